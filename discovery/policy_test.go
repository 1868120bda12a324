package discovery

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/control"
)

// TestPolicyClientAnswers: one long poll per tracker answer, the serial
// held sent as after, the base URL's path prefix kept.
func TestPolicyClientAnswers(t *testing.T) {
	doc := []byte(`{"version":1}`)
	var gotPath, gotAfter string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotAfter = r.URL.Path, r.URL.Query().Get("after")
		switch status {
		case http.StatusOK:
			w.Write(doc)
		case http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(status)
			w.Write([]byte(`{"error":"tracker busy"}`))
		default:
			w.WriteHeader(status)
		}
	}))
	defer srv.Close()
	c, err := NewTrackerClient(srv.URL+"/base/", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := c.Policy(ctx, 41)
	if err != nil || !bytes.Equal(b, doc) || gotPath != "/base"+PolicyPath || gotAfter != "41" {
		t.Fatalf("200: %q, %v, asked %s?after=%s; want the body from /base/policy?after=41", b, err, gotPath, gotAfter)
	}
	status = http.StatusNoContent
	if b, err := c.Policy(ctx, 41); b != nil || err != nil {
		t.Fatalf("204: %q, %v; want nil, nil", b, err)
	}
	status = http.StatusNotFound
	if _, err := c.Policy(ctx, 0); !errors.Is(err, ErrNoPolicy) {
		t.Fatalf("404: %v, want ErrNoPolicy", err)
	}
	status = http.StatusServiceUnavailable
	if _, err := c.Policy(ctx, 0); RetryAfter(err) != 7*time.Second || !errors.Is(err, ErrTrackerStatus) {
		t.Fatalf("503 with Retry-After 7: %v, want a RetryAfterError of 7 s", err)
	}
}

// TestTrackersPolicyMovesOn: a replica that fails is passed over for the
// next; a 404 (no policy) is returned at once.
func TestTrackersPolicyMovesOn(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer down.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"version":1}`))
	}))
	defer up.Close()
	ts, err := NewTrackers([]string{down.URL, up.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := ts.Policy(context.Background(), 0); err != nil || string(b) != `{"version":1}` {
		t.Fatalf("got %q, %v; want the second tracker's policy", b, err)
	}
	if ts.URL() != up.URL {
		t.Fatalf("in use: %s, want %s", ts.URL(), up.URL)
	}
}

// TestAnnouncerCarriesPolicySerial: each announce says which policy the
// peer holds, and a policy in an answer reaches OnPolicy.
func TestAnnouncerCarriesPolicySerial(t *testing.T) {
	doc := json.RawMessage(`{"version":1,"serial":9}`)
	f := &fakeTracker{reqs: make(chan AnnounceRequest), reply: func(n int, req AnnounceRequest) (AnnounceResponse, error) {
		r := AnnounceResponse{IntervalS: 0.001}
		if req.PolicySerial < 9 {
			r.Policy = doc
		}
		return r, nil
	}}
	got := make(chan []byte, 1)
	var held uint64 = 3 // read and written on the announcer's goroutine only
	cfg := fastConfig(f)
	cfg.PolicySerial = func() uint64 { return held }
	cfg.OnPolicy = func(b []byte) { held = 9; got <- b }
	startAnnouncer(t, cfg)
	if r := <-f.reqs; r.PolicySerial != 3 {
		t.Fatalf("first announce: policy_serial %d, want 3", r.PolicySerial)
	}
	if b := <-got; !bytes.Equal(b, doc) {
		t.Fatalf("OnPolicy got %q, want %q", b, doc)
	}
	if r := <-f.reqs; r.PolicySerial != 9 {
		t.Fatalf("next announce: policy_serial %d, want 9", r.PolicySerial)
	}
}

// FuzzAppendJSONPolicy: an answer carrying a policy encodes byte for byte
// as encoding/json encodes it, whether the policy is copied (canonical) or
// not.
func FuzzAppendJSONPolicy(f *testing.F) {
	f.Add(30.0, []byte(`{"version":1,"serial":2,"rules":[{"match":{"region":"eu"},"p2p":"off"}],"signature":"AAAA"}`))
	f.Add(1.5, []byte(`{"a": 1}`))
	f.Add(2.0, []byte(`{"a":"<&>"}`))
	f.Add(2.0, []byte(`{"a":"`+"\u2028"+`"}`))
	f.Add(2.0, []byte(`{`))
	f.Add(2.0, []byte{})
	f.Fuzz(func(t *testing.T, iv float64, policy []byte) {
		r := AnnounceResponse{IntervalS: iv, Peers: []PeerInfo{{Peer: "p", Addrs: []string{"/ip4/198.18.0.1/tcp/1"}}}, Policy: policy}
		got := r.AppendJSON(nil)
		want, err := json.Marshal(r)
		if err != nil {
			if string(got) != "null" {
				t.Fatalf("encoding/json refuses %q (%v), AppendJSON wrote %s", policy, err, got)
			}
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON differs from encoding/json:\n got %s\nwant %s", got, want)
		}
	})
}

// TestCanonicalPolicyCopied: a signed policy's canonical encoding takes the
// fast path (copied into the answer, not encoded again).
func TestCanonicalPolicyCopied(t *testing.T) {
	p := control.Policy{Serial: 3, Issued: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		Rules:       []control.Rule{{Match: control.Match{Region: "eu"}, P2P: control.Off, UploadBps: 1 << 20}},
		Experiments: []control.Experiment{{Name: "ab", Variants: []control.Variant{{Name: "p2p", Percent: 12.5}}}}}
	if err := p.Sign(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))); err != nil {
		t.Fatal(err)
	}
	doc, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !verbatimJSON(doc) {
		t.Fatalf("canonical policy not copied as it is: %s", doc)
	}
	r := AnnounceResponse{IntervalS: 30, Peers: []PeerInfo{}, Policy: doc}
	if got := r.AppendJSON(nil); !bytes.HasSuffix(got, append(append([]byte(`,"policy":`), doc...), '}')) {
		t.Fatalf("answer %s does not end with the policy's bytes", got)
	}
}

// TestTrackersPolicyRefusalLeavesAnnounces: a tracker refusing a long poll
// with a Retry-After (its waiters full) still takes the next announce.
func TestTrackersPolicyRefusalLeavesAnnounces(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PolicyPath {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"interval_s":30,"peers":[]}`))
	}))
	defer srv.Close()
	ts, err := NewTrackers([]string{srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Policy(context.Background(), 0); RetryAfter(err) != time.Minute {
		t.Fatalf("poll: %v, want a Retry-After of 1 min", err)
	}
	req := AnnounceRequest{Content: testContent("a"), Peer: "self", Addrs: []string{"/ip4/127.0.0.1/tcp/1"}}
	if _, err := ts.Announce(context.Background(), req); err != nil {
		t.Fatalf("announce after a refused poll: %v, want it sent", err)
	}
}
