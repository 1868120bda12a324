package swarm

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/store"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// TestPickOrderReachesThePicker shows that Config.PickOrder is what the
// session's picker runs: one leecher fetches from one rate-capped seed, which
// serves requests in order, so the order chunks arrive in is the order the
// picker chose. Sequential arrives in index order; rarest-first (all chunks
// equally rare) in a shuffled one. The simulator takes the same knob
// (sim's TestPickOrderChangesTheSim), so changing the picker changes both.
func TestPickOrderReachesThePicker(t *testing.T) {
	const chunk, n = 16 << 10, 64
	for _, tc := range []struct {
		name      string
		order     policy.Order
		inversion bool
	}{
		{"sequential", policy.Sequential, false},
		{"rarest-first", policy.RarestFirst, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "order", 5, chunk, n*chunk)
			seed := h.addPeer("seed", true)
			h.waitAll([]*hpeer{seed}, time.Minute)
			// Re-serve the seed's chunks from a capped session so arrivals
			// are spread out enough to observe their order.
			capped := h.orderPeer("capped-seed", seed.store, 0, NewBucket(2<<20, nil))
			leech := h.orderPeer("leech", nil, tc.order, nil)
			ctx, cancel := context.WithTimeout(h.ctx, time.Minute)
			defer cancel()
			if err := leech.node.Connect(ctx, leech.sess, capped.node.ID(), nil); err != nil {
				t.Fatal(err)
			}
			// seen[i] is the poll at which chunk i was first held.
			seen := make([]int, n)
			for i := range seen {
				seen[i] = -1
			}
			for poll := 0; ; poll++ {
				left := 0
				for i := range n {
					if seen[i] < 0 && leech.sess.Has(i) {
						seen[i] = poll
					}
					if seen[i] < 0 {
						left++
					}
				}
				if left == 0 {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("leecher incomplete: %+v", leech.sess.Stats())
				case <-time.After(time.Millisecond):
				}
			}
			inversions := 0
			for i := range n {
				for j := i + 1; j < n; j++ {
					if seen[j] < seen[i] {
						inversions++
					}
				}
			}
			t.Logf("%d inversions among %d chunks", inversions, n)
			if got := inversions > 0; got != tc.inversion {
				t.Fatalf("order %d: %d chunks arrived before a lower-index one, want inversions = %v", tc.order, inversions, tc.inversion)
			}
		})
	}
}

// orderPeer starts a session with the given store (nil: a fresh one), pick
// order and upload cap, without origin and without dialling anyone.
func (h *harness) orderPeer(id string, st *store.Store, order policy.Order, up *Bucket) *hpeer {
	h.t.Helper()
	host, err := h.net.NewHost(netx.PeerID(id))
	if err != nil {
		h.t.Fatal(err)
	}
	if st == nil {
		if st, err = store.Open(store.Config{Dir: h.t.TempDir()}); err != nil {
			h.t.Fatal(err)
		}
	}
	node := NewNode(host, nil)
	sess := NewSession(host.ID(), Config{Content: h.content, Store: st, PickOrder: order, Upload: up, Rand: rand.New(rand.NewPCG(7, 7))})
	node.Add(sess)
	ctx, cancel := context.WithCancel(h.ctx)
	p := &hpeer{node: node, sess: sess, store: st, cancel: cancel, stopped: make(chan struct{})}
	sess.Begin(ctx)
	go func() {
		sess.Run(ctx)
		host.Close()
		close(p.stopped)
	}()
	h.t.Cleanup(p.stop)
	return p
}
