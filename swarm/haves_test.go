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
// is complete. The seed is told too (no have-suppression: what a peer
// offers is how its neighbours tell a sharer from a leech); the frames to
// the watcher are those counted after the seed has heard everything.
func TestHaveBurstIsBatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, seed, watcher, viewer, gate := haveBurst(t, "burst", nil)
		n := h.content.Len()
		in := viewer.sess.Want(Range{0, n})
		defer in.Release()
		h.waitAll([]*hpeer{viewer}, time.Minute)
		before := toSeed(t, seed, viewer, n)
		gate.open()
		waitView(t, watcher, n, -1, 2)
		st := viewer.sess.Stats()
		// At most the write held when the gate shut, then one Haves of
		// everything queued behind it.
		if st.Haves != 2*int64(n) || st.HaveFrames-before.HaveFrames > 2 {
			t.Fatalf("viewer announced %d chunks (want %d, each to both neighbours), %d frames to the watcher (want at most 2)", st.Haves, 2*n, st.HaveFrames-before.HaveFrames)
		}
	})
}

// toSeed waits until the seed has heard of every chunk the viewer holds,
// while the viewer's writes to the watcher are held, and returns the
// viewer's stats then: every announcement counted went to the seed.
func toSeed(t *testing.T, seed, viewer *hpeer, n int) Stats {
	t.Helper()
	waitFor(t, time.Minute, "the seed's view of the viewer", func() bool {
		for i := range n {
			if seed.sess.PeersWith(i) != 1 {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second) // virtual time: the writer counts what it wrote
	st := viewer.sess.Stats()
	if st.Haves != int64(n) {
		t.Fatalf("viewer announced %d chunks with its writes to the watcher held; want %d, to the seed", st.Haves, n)
	}
	return st
}

// TestOldPeersGetSingleHaves guards compatibility: when either end does not
// batch (Config.SingleHaves, as a peer predating Haves), every chunk is
// announced in a HAVE frame of its own and the neighbour's view is still
// complete.
func TestOldPeersGetSingleHaves(t *testing.T) {
	for _, old := range []string{"watcher", "viewer"} {
		t.Run("old "+old, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, seed, watcher, viewer, gate := haveBurst(t, "old-"+old, func(id string, c *Config) { c.SingleHaves = id == old })
				n := h.content.Len()
				in := viewer.sess.Want(Range{0, n})
				defer in.Release()
				h.waitAll([]*hpeer{viewer}, time.Minute)
				before := toSeed(t, seed, viewer, n)
				gate.open()
				waitView(t, watcher, n, -1, 2)
				st := viewer.sess.Stats()
				if got := st.HaveFrames - before.HaveFrames; st.Haves != 2*int64(n) || got != int64(n) {
					t.Fatalf("viewer announced %d chunks (want %d), %d frames to the watcher; want %d single HAVEs", st.Haves, 2*n, got, n)
				}
				if old == "viewer" && before.HaveFrames != int64(n) {
					t.Fatalf("an old viewer sent the seed %d frames for %d chunks; want single HAVEs", before.HaveFrames, n)
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

// TestSeedThatLosesChunkFetchesItBack: the viewer announced every chunk
// to the seed too, so a seed that loses one knows who holds it and fetches
// it back from the viewer.
func TestSeedThatLosesChunkFetchesItBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, seed, watcher, viewer, gate := haveBurst(t, "refetch", nil)
		gate.open()
		n := h.content.Len()
		in := viewer.sess.Want(Range{0, n})
		defer in.Release()
		h.waitAll([]*hpeer{viewer}, time.Minute)
		waitView(t, watcher, n, -1, 2)
		const lost = 9
		waitFor(t, time.Minute, "the seed hearing the viewer holds the chunk", func() bool { return seed.sess.PeersWith(lost) == 1 })
		if err := seed.store.Delete(h.content.Hash(lost)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the seed holding the lost chunk again", func() bool { return seed.sess.Has(lost) })
	})
}
