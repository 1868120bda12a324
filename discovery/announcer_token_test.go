package discovery

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAnnouncerSendsCurrentToken: every announce carries the token the
// source returns at that moment, so a refreshed token reaches the tracker at
// the next announce; no source sends no token field at all.
func TestAnnouncerSendsCurrentToken(t *testing.T) {
	f := &fakeTracker{reqs: make(chan AnnounceRequest), reply: func(int, AnnounceRequest) (AnnounceResponse, error) {
		return AnnounceResponse{IntervalS: 0.001}, nil
	}}
	var tok atomic.Value
	tok.Store("first")
	cfg := fastConfig(f)
	cfg.Token = func() string { return tok.Load().(string) }
	startAnnouncer(t, cfg)
	if r := <-f.reqs; r.Token != "first" {
		t.Fatalf("first announce carries token %q, want %q", r.Token, "first")
	}
	tok.Store("second")
	for i := 0; ; i++ {
		r := <-f.reqs
		if r.Token == "second" {
			break
		}
		if r.Token != "first" || i > 3 {
			t.Fatalf("announce %d carries token %q after the refresh", i, r.Token)
		}
	}
	b, _ := json.Marshal(AnnounceRequest{Peer: "p"})
	if strings.Contains(string(b), "token") {
		t.Fatalf("announce without a token encodes a token field: %s", b)
	}
}
