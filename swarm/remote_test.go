package swarm

import (
	"errors"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/store"
	"github.com/shoal-cdn/shoal/wire"
)

// remoteSession is a session that holds nothing and wants every chunk, on
// a manual clock, with no peers: only summaries tell it anything.
func remoteSession(t *testing.T, clock *core.ManualClock, limit int) (*Session, *harness) {
	t.Helper()
	h := newHarness(t, "remote", 5, 16<<10, 10*16<<10)
	st, err := store.Open(store.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return NewSession("me", Config{Content: h.content, Store: st, Clock: clock, RemotePeers: limit}), h
}

func summaryOf(h *harness, seq uint64, runs ...wire.Run) *wire.Summary {
	return &wire.Summary{Content: h.content.ID, Chunks: h.content.Len(), Seq: seq, Slots: 3, Addrs: []string{"/ip4/127.0.0.1/tcp/1"}, Ranges: runs}
}

// TestSummaryTellsWhomToDial: a summary makes its sender a known holder of
// the chunks it lists and the peer to dial for them, once per redial period.
func TestSummaryTellsWhomToDial(t *testing.T) {
	clock := &core.ManualClock{T: time.Unix(1e9, 0)}
	s, h := remoteSession(t, clock, 0)
	if err := s.OfferSummary("a", summaryOf(h, 1, wire.Run{From: 2, To: 5})); err != nil {
		t.Fatal(err)
	}
	if err := s.OfferSummary("b", summaryOf(h, 1, wire.Run{From: 4, To: 5})); err != nil {
		t.Fatal(err)
	}
	if !s.KnowsHolder(3) || s.KnowsHolder(0) {
		t.Fatalf("KnowsHolder(3) = %v, KnowsHolder(0) = %v; want true, false", s.KnowsHolder(3), s.KnowsHolder(0))
	}
	got := s.RemoteDials(1)
	if len(got) != 1 || got[0].ID != "a" || got[0].Rare != 3 || len(got[0].Addrs) != 1 {
		t.Fatalf("RemoteDials(1) = %+v, want a holding 3 rare chunks first", got)
	}
	if again := s.RemoteDials(5); len(again) != 1 || again[0].ID != "b" {
		t.Fatalf("RemoteDials right after = %+v, want only b (a was just offered)", again)
	}
	clock.Advance(remoteRedial)
	if again := s.RemoteDials(5); len(again) != 2 {
		t.Fatalf("RemoteDials after the redial period = %+v, want a and b", again)
	}
	clock.Advance(DefaultRemoteTTL)
	if s.KnowsHolder(3) || s.RemoteDials(5) != nil {
		t.Fatal("a summary still counts after its TTL")
	}
}

// TestSummaryRefusals: summaries of another content or chunk count, and
// older ones from the same sender, are refused with their errors.
func TestSummaryRefusals(t *testing.T) {
	clock := &core.ManualClock{T: time.Unix(1e9, 0)}
	s, h := remoteSession(t, clock, 0)
	if err := s.OfferSummary("a", summaryOf(h, 5, wire.Run{From: 0, To: 1})); err != nil {
		t.Fatal(err)
	}
	if err := s.OfferSummary("a", summaryOf(h, 5, wire.Run{From: 1, To: 2})); !errors.Is(err, ErrStaleSummary) {
		t.Errorf("same seq again: err = %v, want ErrStaleSummary", err)
	}
	other := summaryOf(h, 6)
	other.Content[0] ^= 1
	if err := s.OfferSummary("a", other); !errors.Is(err, ErrOtherContent) {
		t.Errorf("other content: err = %v, want ErrOtherContent", err)
	}
	short := summaryOf(h, 6)
	short.Chunks--
	if err := s.OfferSummary("a", short); !errors.Is(err, ErrOtherContent) {
		t.Errorf("wrong chunk count: err = %v, want ErrOtherContent", err)
	}
	if !s.KnowsHolder(0) || s.KnowsHolder(1) {
		t.Error("a refused summary changed what is known")
	}
}

// TestRemoteSummariesBounded: beyond RemotePeers senders, the one heard
// from longest ago is forgotten.
func TestRemoteSummariesBounded(t *testing.T) {
	clock := &core.ManualClock{T: time.Unix(1e9, 0)}
	s, h := remoteSession(t, clock, 2)
	for k, id := range []string{"a", "b", "c"} {
		if err := s.OfferSummary(netx.PeerID(id), summaryOf(h, 1, wire.Run{From: k, To: k + 1})); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	if s.KnowsHolder(0) || !s.KnowsHolder(1) || !s.KnowsHolder(2) {
		t.Fatalf("holders known: 0 %v, 1 %v, 2 %v; want the oldest sender (a, chunk 0) forgotten", s.KnowsHolder(0), s.KnowsHolder(1), s.KnowsHolder(2))
	}
}

// TestGossipIntervalStretchesWithSwarm: the anti-entropy interval is the
// base in a small swarm and grows with the peers known beyond it, so the
// whole swarm sends about GossipRate summaries a second.
func TestGossipIntervalStretchesWithSwarm(t *testing.T) {
	for _, tc := range []struct {
		known int
		want  time.Duration
	}{{1, 30 * time.Second}, {30, 30 * time.Second}, {100, 100 * time.Second}, {257, 257 * time.Second}} {
		if got := GossipInterval(30*time.Second, tc.known); got != tc.want {
			t.Errorf("GossipInterval(30s, %d) = %v, want %v", tc.known, got, tc.want)
		}
	}
}
