package discovery

import (
	"encoding/json"
	"math"
	"testing"
)

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	cases := []AnnounceResponse{
		{},
		{IntervalS: 27.345, MinIntervalS: 15, Peers: []PeerInfo{}},
		{IntervalS: 30, Peers: []PeerInfo{
			{Peer: "12D3KooWA", Addrs: []string{"/ip4/198.18.0.1/tcp/4001", "/ip6/::1/udp/4001/quic-v1"}, Region: "eu-west", Seed: true},
			{Peer: "p<&>\"\\\u2028é\xff", Addrs: nil},
		}},
		{IntervalS: 1e-7, MinIntervalS: 1e22},
		{IntervalS: -0.5},
		{IntervalS: 30, Peers: []PeerInfo{}, Session: &Session{Exp: 1767225600, Key: []byte("0123456789abcdef0123456789abcdef")}},
		{IntervalS: 30, Session: &Session{Exp: -1}},
		{IntervalS: 30, Peers: []PeerInfo{}, Session: &Session{Exp: 1767225600, Key: []byte("0123456789abcdef0123456789abcdef"), Grant: []byte("\x01\x04acme\x02eu\x00")}},
	}
	for i, r := range cases {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// FuzzAppendJSON checks the hand-written response encoder against
// encoding/json byte for byte, and that what it writes decodes back to the
// same response.
func FuzzAppendJSON(f *testing.F) {
	f.Add(27.345, 15.0, "12D3KooWA", "/ip4/198.18.0.1/tcp/4001", "eu", true, uint8(3), int64(0), []byte(nil))
	f.Add(1e-9, 0.0, "a\"b", "", "", false, uint8(0), int64(1767225600), []byte("0123456789abcdef0123456789abcdef"))
	f.Add(math.Inf(1), math.NaN(), "\xff<", "&", "\u2028", false, uint8(255), int64(-5), []byte{})
	f.Fuzz(func(t *testing.T, iv, miv float64, peer, addr, region string, seed bool, n uint8, exp int64, key []byte) {
		r := AnnounceResponse{IntervalS: iv, MinIntervalS: miv}
		if exp != 0 || key != nil {
			r.Session = &Session{Exp: exp, Key: key}
			if n%2 == 1 {
				r.Session.Grant = key // with and without a grant
			}
		}
		if n > 0 {
			r.Peers = []PeerInfo{}
		}
		for i := range int(n % 8) {
			p := PeerInfo{Peer: peer, Region: region, Seed: seed != (i%2 == 0)}
			if i%3 != 0 {
				p.Addrs = make([]string, i%3)
				for j := range p.Addrs {
					p.Addrs[j] = addr
				}
			}
			r.Peers = append(r.Peers, p)
		}
		got := r.AppendJSON(nil)
		want, err := json.Marshal(r)
		if err != nil {
			if string(got) != "null" {
				t.Fatalf("encoding/json refuses %+v (%v), AppendJSON wrote %s", r, err, got)
			}
			return
		}
		if string(got) != string(want) {
			t.Fatalf("AppendJSON differs from encoding/json:\n got %s\nwant %s", got, want)
		}
		var back AnnounceResponse
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("AppendJSON output does not decode: %v: %s", err, got)
		}
		again := back.AppendJSON(nil)
		var back2 AnnounceResponse
		if err := json.Unmarshal(again, &back2); err != nil || string(back2.AppendJSON(nil)) != string(again) {
			t.Fatalf("decode → encode not stable: %s vs %s", got, again)
		}
	})
}
