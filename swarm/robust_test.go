package swarm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/wire"
)

func TestBadChunkBansSender(t *testing.T) {
	const size = 4 << 20
	h := newHarness(t, "rogue", 2, 256<<10, size)
	bad := h.addRogue("rogue")
	var peers []*hpeer
	for i := range 6 {
		peers = append(peers, h.addPeer(fmt.Sprintf("peer-%d", i), i%3 != 2))
	}
	h.waitAll(peers, 2*time.Minute)
	var badChunks, bans int64
	for i, p := range peers {
		h.checkBytes(p)
		h.checkStoreExact(p)
		st := p.sess.Stats()
		badChunks += st.BadChunks
		bans += st.Bans
		banned := p.sess.Banned(bad.host.ID())
		if banned != (st.BadChunks > 0) {
			t.Errorf("peer %d: %d bad chunks, rogue banned %v", i, st.BadChunks, banned)
		}
		if banned {
			waitFor(t, 10*time.Second, "banned rogue disconnected", func() bool {
				return !slices.Contains(p.sess.Peers(), bad.host.ID())
			})
		}
	}
	t.Logf("rogue sent %d bad chunks; peers counted %d and banned it %d times", bad.served.Load(), badChunks, bans)
	if badChunks < 1 || bans < 1 {
		t.Fatalf("%d bad chunks counted, %d bans: the rogue went unnoticed", badChunks, bans)
	}
}

func TestHalfThePeersLeaveMidTransfer(t *testing.T) {
	const size = 24 << 20
	h := newHarness(t, "leave", 3, 128<<10, size)
	var peers []*hpeer
	for i := range 16 {
		peers = append(peers, h.addPeer(fmt.Sprintf("peer-%02d", i), true))
	}
	progress := func() float64 {
		have := 0
		for _, p := range peers {
			have += p.sess.Stats().Have
		}
		return float64(have) / float64(h.content.Len()*len(peers))
	}
	waitFor(t, 2*time.Minute, "swarm 30% done", func() bool { return progress() >= 0.3 })
	var stay, gone []*hpeer
	for i, p := range peers {
		if i%2 == 1 {
			gone = append(gone, p)
		} else {
			stay = append(stay, p)
		}
	}
	t.Logf("stopping %d peers at %.0f%% done", len(gone), 100*progress())
	for _, p := range gone {
		p.stop()
	}
	h.waitAll(stay, 3*time.Minute)
	for _, p := range stay {
		h.checkBytes(p)
		waitFor(t, 10*time.Second, "departed peers forgotten", func() bool {
			return !slices.ContainsFunc(p.sess.Peers(), func(id netx.PeerID) bool {
				return slices.ContainsFunc(gone, func(g *hpeer) bool { return g.node.ID() == id })
			})
		})
	}
}

func TestLateJoinerFetchesFromPeersOnly(t *testing.T) {
	const size = 8 << 20
	h := newHarness(t, "late", 4, 256<<10, size)
	var early []*hpeer
	for i := range 4 {
		early = append(early, h.addPeer(fmt.Sprintf("early-%d", i), true))
	}
	h.waitAll(early, 2*time.Minute)
	for i, p := range early {
		// Each chunk is counted once, whichever source delivered it first.
		if st := p.sess.Stats(); st.BytesFromPeers+st.BytesFromOrigin != size {
			t.Errorf("early peer %d: %d from peers + %d from origin, want %d", i, st.BytesFromPeers, st.BytesFromOrigin, size)
		}
	}
	egress := h.origin.BytesServed()
	late := h.addPeer("late", false)
	h.waitAll([]*hpeer{late}, time.Minute)
	h.checkBytes(late)
	h.checkStoreExact(late)
	if got := h.origin.BytesServed(); got != egress {
		t.Errorf("origin served %d bytes while the late peer joined, want 0", got-egress)
	}
	if st := late.sess.Stats(); st.BytesFromPeers != size || st.BytesFromOrigin != 0 {
		t.Errorf("late peer: %d from peers, %d from origin; want %d, 0", st.BytesFromPeers, st.BytesFromOrigin, size)
	}
}

func TestProtocolViolationsDisconnect(t *testing.T) {
	const size = 2 << 20
	h := newHarness(t, "rude", 5, 256<<10, size)
	seed := h.addPeer("seed", true)
	h.waitAll([]*hpeer{seed}, time.Minute)
	n := h.content.Len()
	chunk0 := h.data["f0.bin"][:h.content.Size(0)]
	cases := []struct {
		name string
		msg  wire.Message
	}{
		{"HAVE out of range", &wire.Have{Index: uint32(n)}},
		{"HAVES reaching past the last chunk", &wire.Haves{Indexes: []uint32{0, uint32(n)}}},
		// Correct bytes: what is wrong is that nobody asked for them.
		{"DATA never requested", &wire.Data{Index: 0, Payload: chunk0}},
		{"second handshake", &wire.Handshake{Content: h.content.ID, Bits: wire.NewBitfield(n)}},
		{"bitfield of the wrong length", &wire.BitfieldUpdate{Bits: wire.NewBitfield(n + 1)}},
		{"REQUEST past the chunk's end", &wire.Request{Index: 0, Offset: 1, Length: uint32(h.content.Size(0))}},
	}
	for k, tc := range cases {
		rp := h.dialRaw(fmt.Sprintf("rude-%d", k), seed)
		if err := wire.WriteMessage(rp.st, tc.msg); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := rp.drain(); !errors.Is(err, netx.ErrStreamReset) {
			t.Errorf("%s: stream ended with %v, want a reset", tc.name, err)
		}
		waitFor(t, 10*time.Second, tc.name+": offender dropped", func() bool {
			return !slices.Contains(seed.sess.Peers(), rp.id)
		})
	}
	// The session keeps working: a newcomer without origin access gets
	// everything from it.
	after := h.addPeer("after", false)
	h.waitAll([]*hpeer{after}, time.Minute)
	h.checkBytes(after)
	if st := seed.sess.Stats(); st.BytesUploaded != size {
		t.Errorf("seed uploaded %d bytes, want %d", st.BytesUploaded, size)
	}
}

// A peer that keeps requesting while it reads nothing makes the session
// queue a REJECT per request; past maxCtrlQueue it is dropped instead of
// growing the queue without end.
func TestRequestFloodWithoutReadingDisconnects(t *testing.T) {
	const size = 1 << 20
	h := newHarness(t, "flood", 5, 256<<10, size)
	seed := h.addPeer("seed", true)
	h.waitAll([]*hpeer{seed}, time.Minute)
	rp := h.dialRaw("flooder", seed)
	req, err := wire.AppendFrame(nil, &wire.Request{Index: 0, Length: uint32(h.content.Size(0))})
	if err != nil {
		t.Fatal(err)
	}
	batch := bytes.Repeat(req, 256)
	sent := 0
	for ; sent < 64*maxCtrlQueue; sent += 256 {
		if _, err := rp.st.Write(batch); err != nil {
			break // dropped: the reset reached our end
		}
	}
	waitFor(t, 30*time.Second, "flooder dropped", func() bool {
		return !slices.Contains(seed.sess.Peers(), rp.id)
	})
	if err := rp.drain(); !errors.Is(err, netx.ErrStreamReset) {
		t.Errorf("stream ended with %v, want a reset", err)
	}
	// The seed still serves: a newcomer gets everything from it.
	after := h.addPeer("after", false)
	h.waitAll([]*hpeer{after}, time.Minute)
	h.checkBytes(after)
}
