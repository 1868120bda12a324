package swarm

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-cdn/shoal/netx"
)

// writeGate holds a host's writes to one remote peer while shut, as a
// congested link would: what the session queues meanwhile goes out when
// it opens.
type writeGate struct {
	remote netx.PeerID
	mu     sync.Mutex
	shut   chan struct{} // guarded by mu: closed when the gate opens; nil while open
}

func (g *writeGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut == nil {
		g.shut = make(chan struct{})
	}
}

func (g *writeGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
}

func (g *writeGate) wait() {
	g.mu.Lock()
	ch := g.shut
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// wrap makes h's streams to g.remote pass their writes through the gate.
func (g *writeGate) wrap(h netx.Host) netx.Host { return gatedHost{h, g} }

type gatedHost struct {
	netx.Host
	g *writeGate
}

type gatedStream struct {
	netx.Stream
	g *writeGate
}

func (s gatedStream) Write(b []byte) (int, error) {
	if s.RemotePeer() == s.g.remote {
		s.g.wait()
	}
	return s.Stream.Write(b)
}

func (h gatedHost) NewStream(ctx context.Context, p netx.PeerID, addrs []string, proto string) (netx.Stream, error) {
	st, err := h.Host.NewStream(ctx, p, addrs, proto)
	if err != nil {
		return nil, err
	}
	return gatedStream{st, h.g}, nil
}

func (h gatedHost) SetStreamHandler(proto string, fn func(netx.Stream)) {
	if fn == nil {
		h.Host.SetStreamHandler(proto, nil)
		return
	}
	h.Host.SetStreamHandler(proto, func(st netx.Stream) { fn(gatedStream{st, h.g}) })
}

// haveBurst sets up a seed, an on-demand "watcher" that wants nothing, and
// an on-demand "viewer" connected to both whose writes to the watcher are
// held by the returned gate, shut once both are connected. configure
// adjusts the viewer's and the watcher's configs.
func haveBurst(t *testing.T, name string, configure func(id string, c *Config)) (h *harness, seed, watcher, viewer *hpeer, gate *writeGate) {
	const chunk, n = 16 << 10, 64
	h = newHarness(t, name, 31, chunk, n*chunk)
	seed = h.addPeer("seed", true)
	h.waitAll([]*hpeer{seed}, time.Minute)
	h.onDemand = true
	h.configure = configure
	watcher = h.addPeer("watcher", false)
	gate = &writeGate{remote: watcher.node.ID()}
	t.Cleanup(gate.open) // a writer held at the end would keep its session from stopping
	h.wrapHost = func(id string, host netx.Host) netx.Host { return gate.wrap(host) }
	viewer = h.addPeer("viewer", false)
	waitFor(t, time.Minute, "watcher and viewer connected", func() bool {
		return slices.Contains(watcher.sess.Peers(), viewer.node.ID()) && slices.Contains(viewer.sess.Peers(), watcher.node.ID())
	})
	gate.close()
	return h, seed, watcher, viewer, gate
}

// waitView waits until the watcher's view of its peers says chunk i is
// held by want of them (the seed and, once told, the viewer), for every i
// but skip.
func waitView(t *testing.T, watcher *hpeer, n, skip, want int) {
	t.Helper()
	waitFor(t, time.Minute, "the watcher's view of the viewer", func() bool {
		for i := range n {
			if i != skip && watcher.sess.PeersWith(i) != want {
				return false
			}
		}
		return true
	})
}

// TestHaveBurstIsBatched guards what batching is for: a burst of chunks
// received while the writer to a neighbour is busy reaches that neighbour
// as one Haves frame, not a frame per chunk, and the neighbour's view of us
// is complete. The HAVEs to the seed, which holds every chunk, are
// suppressed: every announcement counted went to the watcher.
func TestHaveBurstIsBatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _, watcher, viewer, gate := haveBurst(t, "burst", nil)
		n := h.content.Len()
		in := viewer.sess.Want(Range{0, n})
		defer in.Release()
		h.waitAll([]*hpeer{viewer}, time.Minute)
		gate.open()
		waitView(t, watcher, n, -1, 2)
		st := viewer.sess.Stats()
		// At most the frame the writer was sending when the gate shut,
		// then one Haves of everything queued behind it.
		if st.Haves != int64(n) || st.HaveFrames > 2 {
			t.Fatalf("viewer announced %d chunks in %d frames; want %d in at most 2", st.Haves, st.HaveFrames, n)
		}
	})
}

// TestOldPeersGetSingleHaves guards compatibility: when either end does not
// batch (Config.SingleHaves, as a peer predating Haves), every chunk is
// announced in a HAVE frame of its own and the neighbour's view is still
// complete.
func TestOldPeersGetSingleHaves(t *testing.T) {
	for _, old := range []string{"watcher", "viewer"} {
		t.Run("old "+old, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, _, watcher, viewer, gate := haveBurst(t, "old-"+old, func(id string, c *Config) { c.SingleHaves = id == old })
				n := h.content.Len()
				in := viewer.sess.Want(Range{0, n})
				defer in.Release()
				h.waitAll([]*hpeer{viewer}, time.Minute)
				gate.open()
				waitView(t, watcher, n, -1, 2)
				if st := viewer.sess.Stats(); st.Haves != int64(n) || st.HaveFrames != int64(n) {
					t.Fatalf("viewer announced %d chunks in %d frames; want %d single HAVEs", st.Haves, st.HaveFrames, n)
				}
			})
		})
	}
}

// TestDontHaveWithdrawsQueuedHave guards the order of announcements: a chunk
// lost while its HAVE is still queued leaves the neighbour believing we do
// not hold it, as HAVE then DONT_HAVE sent one by one would.
func TestDontHaveWithdrawsQueuedHave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _, watcher, viewer, gate := haveBurst(t, "withdraw", nil)
		n := h.content.Len()
		in := viewer.sess.Want(Range{0, n})
		h.waitAll([]*hpeer{viewer}, time.Minute)
		in.Release() // so the lost chunk is not fetched again
		const lost = 5
		if err := viewer.store.Delete(h.content.Hash(lost)); err != nil {
			t.Fatal(err)
		}
		if viewer.sess.Has(lost) {
			t.Fatalf("viewer still holds chunk %d after its store dropped it", lost)
		}
		gate.open()
		// The DONT_HAVE goes out before the HAVEs that follow it in the
		// queue, so once every other chunk is known the verdict is final.
		waitView(t, watcher, n, lost, 2)
		if got := watcher.sess.PeersWith(lost); got != 1 {
			t.Fatalf("watcher sees chunk %d at %d peers; want 1, the seed", lost, got)
		}
	})
}

// TestSuppressedHaveSentWhenNeighbourLosesChunk guards have-suppression: a
// neighbour that held a chunk when we got it was not told, so when it
// withdraws the chunk (DONT_HAVE) it is told then, and can fetch it back
// from us.
func TestSuppressedHaveSentWhenNeighbourLosesChunk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, seed, watcher, viewer, gate := haveBurst(t, "resend", nil)
		gate.open()
		n := h.content.Len()
		in := viewer.sess.Want(Range{0, n})
		defer in.Release()
		h.waitAll([]*hpeer{viewer}, time.Minute)
		waitView(t, watcher, n, -1, 2)
		if st := viewer.sess.Stats(); st.Haves != int64(n) {
			t.Fatalf("viewer announced %d chunks; want %d, all to the watcher", st.Haves, n)
		}
		const lost = 9
		if got := seed.sess.PeersWith(lost); got != 0 {
			t.Fatalf("seed sees chunk %d at %d peers before losing it; want 0 (suppressed)", lost, got)
		}
		if err := seed.store.Delete(h.content.Hash(lost)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the viewer's HAVE to the seed", func() bool { return viewer.sess.Stats().Haves == int64(n)+1 })
		waitFor(t, time.Minute, "the seed holding the lost chunk again", func() bool { return seed.sess.Has(lost) })
	})
}
