package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

// TestTrackerLoadAnswersEveryAnnounce runs a small workload on both
// in-process targets: every announce (signed ones with tokens included) is
// answered 200, so the workload's churn, timestamps and tokens are what a
// strict tracker accepts.
func TestTrackerLoadAnswersEveryAnnounce(t *testing.T) {
	cfg := TrackerLoadConfig{Peers: 50, Swarms: 10, Session: 4, Conns: 4, Announces: 400, Duration: time.Minute, Seed: 3}
	rs, err := RunTrackerLoad(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2 (memory, memory+checks)", len(rs))
	}
	for _, r := range rs {
		// Warm by default: each peer's first announce before the clock.
		if r.Warm != 50 || r.WarmOK != 50 {
			t.Errorf("%s: warm-up %d sent, %d ok; want 50 and 50 (one per peer)", r.Target, r.Warm, r.WarmOK)
		}
		if r.OK != 400 || r.Failed != 0 || r.Refused != 0 {
			t.Errorf("%s: ok %d refused %d failed %d (first failure %q), want all 400 ok", r.Target, r.OK, r.Refused, r.Failed, r.FirstFail)
		}
		// The checked target hands out session tickets: each peer's first
		// announce is signed, the later ones of its session MACed.
		if wantMAC := r.Target == TargetMemoryChecks; (r.MACed > 0) != wantMAC || r.MACed >= r.OK {
			t.Errorf("%s: %d of %d announces MACed; want some but not all (%v), none without checks", r.Target, r.MACed, r.OK, wantMAC)
		}
		if r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 {
			t.Errorf("%s: percentiles out of order: p50 %v p99 %v max %v", r.Target, r.P50, r.P99, r.Max)
		}
	}
	// Cold: no warm-up, the timed run starts with the first announces.
	cold := cfg
	cold.Cold, cold.Targets = true, []string{TargetMemoryChecks}
	cr, err := RunTrackerLoad(context.Background(), cold)
	if err != nil {
		t.Fatal(err)
	}
	if r := cr[0]; r.Warm != 0 || r.OK != 400 || r.MACed >= rs[1].MACed {
		t.Errorf("cold: warm-up %d, ok %d, %d MACed (warm run: %d); want no warm-up, 400 ok and fewer MACed than warm (more first announces timed)", r.Warm, r.OK, r.MACed, rs[1].MACed)
	}
	var b strings.Builder
	WriteLoadReport(&b, cfg, rs)
	if !strings.Contains(b.String(), "memory+checks") {
		t.Errorf("report lacks a target:\n%s", b.String())
	}
}

func TestTrackerLoadRefusesNonLoopbackTargets(t *testing.T) {
	for _, target := range []string{"http://198.18.0.1:7070", "http://example.com:80", "redis", "http://127.0.0.1:7070|http://10.0.0.1:7070"} {
		if _, err := RunTrackerLoad(context.Background(), TrackerLoadConfig{Targets: []string{target}}); err == nil {
			t.Errorf("target %q accepted", target)
		}
	}
}

// TestSessionOfReadsTheTicketOnly: the generator takes the ticket out of an
// answer without decoding its peers, and finds none where there is none,
// even with a policy that has a "session" key of its own.
func TestSessionOfReadsTheTicketOnly(t *testing.T) {
	key := bytes.Repeat([]byte{7}, discovery.SessionKeyLen)
	peers := []discovery.PeerInfo{{Peer: "12D3KooWA", Addrs: []string{"/ip4/198.18.0.1/tcp/4001"}}, {Peer: "12D3KooWB", Seed: true}}
	with := (&discovery.AnnounceResponse{IntervalS: 30, Peers: peers, Session: &discovery.Session{Exp: 99, Key: key},
		Policy: json.RawMessage(`{"session":{"exp":1,"key":"AAAA"}}`)}).AppendJSON(nil)
	tk := sessionOf(with)
	if tk == nil || tk.Exp != 99 || !bytes.Equal(tk.Key, key) {
		t.Fatalf("sessionOf(%s) = %+v, want exp 99 and the key", with, tk)
	}
	if want := discovery.NewMACKey(key).Sum([]byte("m")); tk.mk.Sum([]byte("m")) != want {
		t.Fatal("the ticket's MAC pads are not its key's")
	}
	grant := []byte{1, 5, 'b', 'e', 'n', 'c', 'h', 0, 0}
	withGrant := (&discovery.AnnounceResponse{IntervalS: 30, Peers: peers, Session: &discovery.Session{Exp: 99, Key: key, Grant: grant}}).AppendJSON(nil)
	spaced := []byte(`{"peers":[],"session": {"grant":"AQViZW5jaAAA", "key":"` + base64.StdEncoding.EncodeToString(key) + `","exp":99}}`)
	for _, body := range [][]byte{withGrant, spaced} {
		tk := sessionOf(body)
		if tk == nil || tk.Exp != 99 || !bytes.Equal(tk.Key, key) || !bytes.Equal(tk.Grant, grant) {
			t.Fatalf("sessionOf(%s) = %+v, want exp 99, the key and the grant", body, tk)
		}
		// What maced sends decodes as an announce MACed with the ticket,
		// the grant in place of a token.
		r := discovery.AnnounceRequest{Content: core.ContentID{1}, Peer: "p", Token: "tok", TS: 5}
		m := r
		m.Token = ""
		tmpl, _ := json.Marshal(m)
		q := loadReq{head: requestHead(nil, "h", "198.18.0.1"), tmpl: tmpl[:len(tmpl)-1], sb: m.SigningBytes()}
		raw := q.maced(nil, tk)
		_, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		got, err := discovery.DecodeAnnounceBody(body)
		if err != nil || got.Token != "" || !bytes.Equal(got.Grant, grant) || got.SessExp != 99 {
			t.Fatalf("maced sent %s: %+v (%v), want the grant, no token", raw, got, err)
		}
		r.MACWith(tk.Session, time.UnixMilli(5))
		if err := got.VerifyMAC(key, time.UnixMilli(5), time.Hour); err != nil || !bytes.Equal(got.MAC, r.MAC) {
			t.Fatalf("maced's MAC is not MACWith's: %v", err)
		}
	}
	without := (&discovery.AnnounceResponse{IntervalS: 30, Peers: peers, Policy: json.RawMessage(`{"session":{"exp":1,"key":"AAAA"}}`)}).AppendJSON(nil)
	if tk := sessionOf(without); tk != nil {
		t.Fatalf("sessionOf(%s) = %+v, want none", without, tk)
	}
}

// TestTrackerLoadFloorTicketsLikeATracker: the floor target answers every
// announce, and its ticket makes the generator MAC the later announces of
// each session (the first ones stay signed), as against a checking tracker.
func TestTrackerLoadFloorTicketsLikeATracker(t *testing.T) {
	cfg := TrackerLoadConfig{Targets: []string{TargetFloor}, Peers: 50, Swarms: 10, Session: 4, Conns: 4, Announces: 400, Duration: time.Minute, Seed: 5}
	rs, err := RunTrackerLoad(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.Warm != 50 || r.WarmOK != 50 || r.OK != 400 || r.Failed != 0 || r.Refused != 0 {
		t.Errorf("floor: warm-up %d/%d ok, timed ok %d refused %d failed %d (first failure %q); want 50/50 and 400 ok", r.WarmOK, r.Warm, r.OK, r.Refused, r.Failed, r.FirstFail)
	}
	if r.MACed == 0 || r.MACed >= r.OK {
		t.Errorf("floor: %d of %d announces MACed; want some but not all (each session's first is signed)", r.MACed, r.OK)
	}
}
