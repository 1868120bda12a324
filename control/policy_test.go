package control

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/manifest"
)

func testKey(t testing.TB, seed byte) ed25519.PrivateKey {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return ed25519.NewKeyFromSeed(s)
}

func signed(t testing.TB, priv ed25519.PrivateKey, p Policy) []byte {
	t.Helper()
	p.Issued = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	if err := p.Sign(priv); err != nil {
		t.Fatal(err)
	}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignDecodeRoundTrip(t *testing.T) {
	priv := testKey(t, 1)
	b := signed(t, priv, Policy{Serial: 7, Rules: []Rule{{Match: Match{Region: "eu"}, P2P: Off}},
		Experiments: []Experiment{{Name: "p2p-half", Variants: []Variant{{Name: "p2p", Percent: 50}, {Name: "cdn", Percent: 50}}}}})
	p, err := Decode(b, manifest.PublicOf(priv))
	if err != nil {
		t.Fatal(err)
	}
	if p.Serial != 7 || len(p.Rules) != 1 || p.Rules[0].P2P != Off {
		t.Fatalf("decoded %+v", p)
	}
	if _, err := Decode(b, manifest.PublicOf(testKey(t, 2))); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("another operator's key: %v, want ErrUntrusted", err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	priv := testKey(t, 1)
	trust := manifest.PublicOf(priv)
	good := signed(t, priv, Policy{Serial: 3, Rules: []Rule{{P2P: Off}}})
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"tampered", []byte(strings.Replace(string(good), `"off"`, `"on"`, 1)), ErrBadSignature},
		{"not json", []byte("{"), ErrMalformed},
		{"no version", []byte(`{"serial":1}`), ErrMalformed},
		{"newer version", []byte(`{"version":2}`), ErrVersion},
		{"unknown field", []byte(strings.Replace(string(good), `{"version":1,`, `{"version":1,"x":1,`, 1)), ErrMalformed},
		{"trailing", append(append([]byte{}, good...), []byte(" {}")...), ErrMalformed},
		{"non-canonical", append([]byte(" "), good...), ErrNonCanonical},
		{"too large", make([]byte, MaxSize+1), ErrTooLarge},
	}
	for _, c := range cases {
		if _, err := Decode(c.b, trust); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestSignRefusesBadPolicies(t *testing.T) {
	priv := testKey(t, 1)
	cases := map[string]Policy{
		"serial 0":          {Rules: []Rule{{P2P: Off}}},
		"bad mode":          {Serial: 1, Rules: []Rule{{P2P: "sometimes"}}},
		"bad metered":       {Serial: 1, Rules: []Rule{{Metered: "no"}}},
		"negative cap":      {Serial: 1, Rules: []Rule{{UploadBps: -1}}},
		"cap per content":   {Serial: 1, Rules: []Rule{{Match: Match{Content: "C1"}, UploadBps: 1000}}},
		"unknown cohort":    {Serial: 1, Rules: []Rule{{Match: Match{Cohort: "x/y"}, P2P: Off}}},
		"cohort no variant": {Serial: 1, Rules: []Rule{{Match: Match{Cohort: "e"}, P2P: Off}}, Experiments: []Experiment{{Name: "e", Variants: []Variant{{Name: "a", Percent: 10}}}}},
		"over 100%":         {Serial: 1, Experiments: []Experiment{{Name: "e", Variants: []Variant{{Name: "a", Percent: 60}, {Name: "b", Percent: 50}}}}},
		"zero percent":      {Serial: 1, Experiments: []Experiment{{Name: "e", Variants: []Variant{{Name: "a", Percent: 0}}}}},
		"repeated exp":      {Serial: 1, Experiments: []Experiment{{Name: "e", Variants: []Variant{{Name: "a", Percent: 1}}}, {Name: "e", Variants: []Variant{{Name: "a", Percent: 1}}}}},
		"slash in name":     {Serial: 1, Experiments: []Experiment{{Name: "a/b", Variants: []Variant{{Name: "a", Percent: 1}}}}},
		"space in region":   {Serial: 1, Rules: []Rule{{Match: Match{Region: "eu west"}, P2P: Off}}},
		"long tenant":       {Serial: 1, Rules: []Rule{{Match: Match{Tenant: strings.Repeat("t", MaxLabelLen+1)}, P2P: Off}}},
		"empty rules":       {Serial: 1, Rules: []Rule{}},
	}
	for name, p := range cases {
		if err := p.Sign(priv); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNonCanonical) {
			t.Errorf("%s: Sign said %v, want a refusal", name, err)
		}
	}
}

func TestNewer(t *testing.T) {
	a, b := &Policy{Serial: 1}, &Policy{Serial: 2}
	if !a.Newer(nil) || !b.Newer(a) || a.Newer(b) || a.Newer(a) {
		t.Fatal("Newer: want strictly higher serials only")
	}
}

func TestDecide(t *testing.T) {
	p := &Policy{Serial: 9, Rules: []Rule{
		{Match: Match{Region: "eu"}, P2P: Off},
		{Match: Match{Tenant: "acme"}, P2P: LeechOnly, UploadBps: 1 << 20},
		{Match: Match{Device: "mobile"}, UploadBps: 256 << 10, Metered: LeechOnly, Battery: Off},
		{Match: Match{Content: "C1"}, P2P: Off},
		{Match: Match{Tenant: "kids"}, Consent: true},
	}}
	cases := []struct {
		f    Facts
		mode P2P
		cap  int64
	}{
		{Facts{Region: "us"}, On, 0},
		{Facts{Region: "eu"}, Off, 0},
		{Facts{Tenant: "acme", Region: "us"}, LeechOnly, 1 << 20},
		{Facts{Tenant: "acme", Device: "mobile"}, LeechOnly, 256 << 10},
		{Facts{Device: "mobile"}, On, 256 << 10},
		{Facts{Device: "mobile", Metered: true}, LeechOnly, 256 << 10},
		{Facts{Device: "mobile", Metered: true, OnBattery: true}, Off, 256 << 10},
		{Facts{Device: "desktop", Metered: true, OnBattery: true}, On, 0},
		{Facts{Content: "C1"}, Off, 0},
		{Facts{Content: "C2"}, On, 0},
		{Facts{Tenant: "kids"}, Off, 0},
		{Facts{Tenant: "kids", Consented: true}, On, 0},
	}
	for _, c := range cases {
		d := p.Decide(c.f)
		if d.P2P != c.mode || d.UploadBps != c.cap || d.Serial != 9 {
			t.Errorf("%+v: got %s cap %d serial %d (why %v), want %s cap %d", c.f, d.P2P, d.UploadBps, d.Serial, d.Why, c.mode, c.cap)
		}
		if d.P2P != On && len(d.Why) == 0 {
			t.Errorf("%+v: %s without a reason", c.f, d.P2P)
		}
	}
	if d := (*Policy)(nil).Decide(Facts{Region: "eu"}); d.P2P != On || d.UploadBps != 0 {
		t.Errorf("no policy: %+v, want on without a cap", d)
	}
	d := p.Decide(Facts{Region: "us"}).Stricter(LeechOnly, 100)
	if d.P2P != LeechOnly || d.UploadBps != 100 {
		t.Errorf("local stricter: %+v", d)
	}
	d = p.Decide(Facts{Region: "eu"}).Stricter(On, 0)
	if d.P2P != Off {
		t.Errorf("a local flag loosened the policy: %+v", d)
	}
}

func TestCohortsStableAndSplit(t *testing.T) {
	p := &Policy{Serial: 1, Experiments: []Experiment{
		{Name: "half", Variants: []Variant{{Name: "p2p", Percent: 50}, {Name: "cdn", Percent: 50}}},
		{Name: "tenth", Variants: []Variant{{Name: "in", Percent: 10}}},
	}, Rules: []Rule{{Match: Match{Cohort: "half/cdn"}, P2P: Off}}}
	const n = 20000
	count := map[string]int{}
	for i := range n {
		peer := fmt.Sprintf("12D3KooW%06d", i)
		c := p.Cohorts(peer)
		if c2 := p.Cohorts(peer); c2["half"] != c["half"] || c2["tenth"] != c["tenth"] {
			t.Fatalf("cohorts of %s changed between calls", peer)
		}
		count["half/"+c["half"]]++
		count["tenth/"+c["tenth"]]++
		d := p.Decide(Facts{Peer: peer})
		if (c["half"] == "cdn") != (d.P2P == Off) {
			t.Fatalf("%s in %v decided %s", peer, c, d.P2P)
		}
	}
	// Binomial: 3 sigma of n/2 is ~212, of n/10 ~127.
	if d := count["half/p2p"] - n/2; d < -300 || d > 300 {
		t.Errorf("half/p2p has %d of %d", count["half/p2p"], n)
	}
	if count["half/"] != 0 {
		t.Errorf("%d peers in no variant of a 100%% experiment", count["half/"])
	}
	if d := count["tenth/in"] - n/10; d < -200 || d > 200 {
		t.Errorf("tenth/in has %d of %d", count["tenth/in"], n)
	}
	if CohortLabel(map[string]string{"b": "x", "a": "y"}) != "a/y,b/x" || CohortLabel(nil) != "" {
		t.Error("CohortLabel: want sorted experiment/variant pairs")
	}
}

func FuzzDecode(f *testing.F) {
	priv := testKey(f, 1)
	f.Add(signed(f, priv, Policy{Serial: 1, Rules: []Rule{{Match: Match{Region: "eu"}, P2P: Off, UploadBps: 5}}}))
	f.Add(signed(f, priv, Policy{Serial: 2, Experiments: []Experiment{{Name: "e", Variants: []Variant{{Name: "a", Percent: 50}}}}}))
	f.Add([]byte(`{"version":1}`))
	trust := manifest.PublicOf(priv)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b, trust)
		if err != nil {
			return
		}
		enc, err := p.Encode()
		if err != nil || string(enc) != string(b) {
			t.Fatalf("a decoded policy re-encodes differently: %v", err)
		}
		_ = p.Decide(Facts{Peer: "x", Region: "eu", Metered: true, OnBattery: true})
	})
}
