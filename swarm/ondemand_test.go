package swarm

import (
	"testing"
	"time"
)

// TestOnDemandSessionFetchesOnlyWanted: a session on demand fetches
// nothing until a reader wants a range, then exactly that range.
func TestOnDemandSessionFetchesOnlyWanted(t *testing.T) {
	const chunk = 16 << 10
	h := newHarness(t, "ondemand", 21, chunk, 64*chunk)
	seed := h.addPeer("seed", true)
	h.waitAll([]*hpeer{seed}, time.Minute)
	h.onDemand = true
	leech := h.addPeer("leech", false)
	waitFor(t, time.Minute, "leecher connected", func() bool { return leech.sess.Stats().Peers == 1 })
	if st := leech.sess.Stats(); st.Have != 0 || st.Wanted != 0 {
		t.Fatalf("nothing wanted yet, but %+v", st)
	}
	in := leech.sess.Want(Range{From: 10, To: 14})
	defer in.Release()
	waitFor(t, time.Minute, "wanted chunks", func() bool { return leech.sess.Stats().Have == 4 })
	for i := range h.content.Len() {
		if got, want := leech.sess.Has(i), i >= 10 && i < 14; got != want {
			t.Fatalf("chunk %d held %v, want %v", i, got, want)
		}
	}
}

// TestEvictionSendsDontHave: a chunk that leaves a peer's cache leaves its
// have-set and its neighbours' availability, and the neighbour then gets
// it from elsewhere (here, nowhere: it becomes rare).
func TestEvictionSendsDontHave(t *testing.T) {
	const chunk = 16 << 10
	h := newHarness(t, "donthave", 22, chunk, 16*chunk)
	first := h.addPeer("first", true)
	h.waitAll([]*hpeer{first}, time.Minute)
	h.onDemand = true
	// The seed has no origin, so a chunk it loses stays lost.
	seed := h.addPeer("seed", false)
	all := seed.sess.Want(Range{From: 0, To: h.content.Len()})
	defer all.Release()
	h.waitAll([]*hpeer{seed}, time.Minute)
	first.stop()
	leech := h.addPeer("leech", false)
	waitFor(t, time.Minute, "leecher sees the seed's chunks", func() bool { return leech.sess.PeersWith(3) == 1 })

	if err := seed.store.Delete(h.content.Hash(3)); err != nil {
		t.Fatal(err)
	}
	if seed.sess.Has(3) || seed.sess.Stats().Complete || seed.sess.Stats().Lost != 1 {
		t.Fatalf("seed still claims chunk 3 after deleting it: %+v", seed.sess.Stats())
	}
	waitFor(t, time.Minute, "DONT_HAVE to reach the leecher", func() bool { return leech.sess.PeersWith(3) == 0 })
	if leech.sess.PeersWith(4) != 1 {
		t.Fatal("availability of an untouched chunk changed")
	}
	in := leech.sess.Want(Range{From: 0, To: h.content.Len()})
	defer in.Release()
	waitFor(t, time.Minute, "every chunk but 3", func() bool { return leech.sess.Stats().Have == h.content.Len()-1 })
	if st := leech.sess.Stats(); st.RareChunks != 1 || leech.sess.Has(3) {
		t.Fatalf("chunk 3 should be missing and rare: %+v", st)
	}
}
