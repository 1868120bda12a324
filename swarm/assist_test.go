package swarm

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/store"
)

// TestOriginAssistUsesSpareOrigin guards Config.OriginAssist: with a
// connected seeder holding every chunk, nothing is an origin fallback
// candidate, yet an assisted leecher still fills its free origin slots.
// The seeder uploads slowly, so most chunks are not in flight to it when
// the leecher's control loop runs.
func TestOriginAssistUsesSpareOrigin(t *testing.T) {
	const chunk = 64 << 10
	t.Run("no cap", func(t *testing.T) { testOriginAssist(t, chunk, 0) })
	// Config.AssistBudget: the leecher asks the origin for at most that
	// many bytes of its own accord; the seeder supplies the rest.
	t.Run("budget", func(t *testing.T) { testOriginAssist(t, chunk, 4*chunk) })
}

func testOriginAssist(t *testing.T, chunk int, budget int64) {
	h := newHarness(t, "assist", 41, int64(chunk), 32*chunk)
	start := func(id string, seed bool, cfg Config) (*Session, *Node) {
		host, err := h.net.NewHost(netx.PeerID(id))
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(store.Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if seed {
			b := h.data["f0.bin"]
			for i := range h.content.Len() {
				if err := st.Put(h.content.Hash(i), b[i*chunk:i*chunk+h.content.Size(i)]); err != nil {
					t.Fatal(err)
				}
			}
		}
		cfg.Content, cfg.Store = h.content, st
		cfg.Rand = rand.New(rand.NewPCG(41, uint64(len(id))))
		s := NewSession(host.ID(), cfg)
		n := NewNode(host, nil)
		n.Add(s)
		ctx, cancel := context.WithCancel(h.ctx)
		s.Begin(ctx)
		stopped := make(chan struct{})
		go func() {
			s.Run(ctx)
			host.Close()
			st.Close()
			close(stopped)
		}()
		t.Cleanup(func() { cancel(); <-stopped })
		return s, n
	}
	rate := 64 << 10
	if budget > 0 {
		rate = 256 << 10 // most of the content comes from the seeder
	}
	seeder, seedNode := start("seeder", true, Config{Upload: NewBucket(float64(rate), core.RealClock{})})
	oc, err := cdn.New(cdn.Config{BaseURL: h.originURL(), BaseBackoff: 10 * time.Millisecond, Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	gate := NewOriginGate(0, nil)
	leech, node := start("leech", false, Config{Origin: oc, OriginAssist: true, Gate: gate, AssistBudget: budget})
	if err := node.Connect(h.ctx, leech, seedNode.ID(), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-leech.Done():
	case <-time.After(90 * time.Second): // a hang guard, not a measurement
		t.Fatalf("leecher incomplete: %+v", leech.Stats())
	}
	st := leech.Stats()
	if st.BytesFromOrigin == 0 {
		t.Fatalf("assisted leecher took nothing from the origin: %+v", st)
	}
	// The seeder holds everything, so nothing is designated to the
	// leecher or taken over: all it took from the origin was assist, and
	// at most its starter chunk (it began before it connected).
	if budget > 0 && st.BytesFromOrigin > budget+int64(chunk) {
		t.Fatalf("assisted leecher took %d bytes from the origin, over its budget of %d and one starter chunk", st.BytesFromOrigin, budget)
	}
	if got := st.BytesFromOrigin + st.BytesFromPeers; got != int64(32*chunk) {
		t.Fatalf("first copies from origin and peers: %d bytes, want %d", got, 32*chunk)
	}
	// What the download carried holds every first copy (and any duplicate).
	if st.OriginDataReceived < st.BytesFromOrigin || st.PeerDataReceived < st.BytesFromPeers {
		t.Fatalf("received %d bytes from the origin and %d from peers, fewer than their first copies: %+v", st.OriginDataReceived, st.PeerDataReceived, st)
	}
	if !seeder.Stats().Complete {
		t.Fatal("seeder lost its chunks")
	}
	// Assist fetches took and returned origin slots like any other.
	if n := gate.InFlight(); n != 0 {
		t.Fatalf("origin gate: %d in flight after the leecher completed, want 0", n)
	}
}
