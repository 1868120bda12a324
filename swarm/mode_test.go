package swarm

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm/policy"
	"github.com/shoal-cdn/shoal/wire"
)

// peerTraffic is the DATA payload bytes a set of peers received from and
// sent to peers, and how many connections they hold (both ends counted).
type peerTraffic struct{ in, out, conns int64 }

func trafficOf(peers []*hpeer) peerTraffic {
	var t peerTraffic
	for _, p := range peers {
		st := p.sess.Stats()
		t.in += st.PeerDataReceived
		t.out += st.BytesUploaded
		t.conns += int64(st.Peers)
	}
	return t
}

// pollVirtual checks cond every tick of virtual time until it holds or
// limit has passed; it reports whether it held.
func pollVirtual(limit time.Duration, cond func() bool) bool {
	end := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(policy.DefaultTick)
	}
	return true
}

// capUploads gives every peer added from now on its own upload cap, so a
// swarm transfer takes virtual time and can be caught in the middle.
func capUploads(h *harness, rate float64) {
	h.configure = func(id string, c *Config) { c.Upload = NewBucket(rate, nil) }
}

// TestKillSwitchMidTransferThenBackOn runs on virtual time. Eight peers
// with an origin are mid-transfer of 8 MiB, and a ninth without one
// fetches from them. Switched off, the eight stop moving chunk data
// between peers (after the DATA frames already being written, at most one
// per connection), finish from the origin byte-identical, sooner than a
// peer request would time out, and leave the ninth stuck. Switched back on
// over the same connections, they serve the ninth until it completes.
func TestKillSwitchMidTransferThenBackOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const chunk, size = 64 << 10, 8 << 20
		h := newHarness(t, "kill", 14, chunk, size)
		capUploads(h, 1<<20)
		var swarm []*hpeer
		for i := range 8 {
			swarm = append(swarm, h.addPeer(fmt.Sprintf("peer-%d", i), true))
		}
		leech := h.addPeer("no-origin", false)
		all := append([]*hpeer{leech}, swarm...)

		// Mid-transfer: peers have served each other a good share, and
		// none is done.
		if !pollVirtual(time.Minute, func() bool { return trafficOf(all).in >= 2*size }) {
			t.Fatalf("the swarm moved %d peer bytes in a minute", trafficOf(all).in)
		}
		for i, p := range swarm {
			if st := p.sess.Stats(); st.Complete {
				t.Fatalf("peer %d complete before the switch (%+v): not mid-transfer", i, st)
			}
		}
		for _, p := range swarm {
			p.sess.SetMode(ModeOff)
		}
		switched := time.Now()
		before := trafficOf(all)
		time.Sleep(time.Second)
		settled := trafficOf(all)
		t.Logf("at the switch: %+v; a second later: %+v", before, settled)
		if grew := settled.in - before.in; grew > before.conns*chunk {
			t.Errorf("%d peer bytes received after the switch, beyond one chunk per connection (%d connections)", grew, before.conns)
		}

		for i, p := range swarm {
			select {
			case <-p.sess.Done():
			default:
				if !pollVirtual(policy.DefaultGrace, func() bool { return p.sess.Stats().Complete }) {
					t.Fatalf("peer %d incomplete %v after the switch: %+v", i, time.Since(switched), p.sess.Stats())
				}
			}
			h.checkBytes(p)
			if m := p.sess.Mode(); m != ModeOff {
				t.Fatalf("peer %d in mode %v, want off", i, m)
			}
		}
		t.Logf("every peer complete %v after the switch", time.Since(switched))
		time.Sleep(2 * time.Second) // ticks, choke rounds: still nothing
		if after := trafficOf(all); after.in != settled.in || after.out != settled.out {
			t.Fatalf("peer data moved while off: %+v a second after the switch, %+v at the end", settled, after)
		}
		if st := leech.sess.Stats(); st.Complete {
			t.Fatalf("the peer without an origin completed while every other was off: %+v", st)
		}

		for _, p := range swarm {
			p.sess.SetMode(ModeOn)
		}
		if !pollVirtual(time.Minute, func() bool { return leech.sess.Stats().Complete }) {
			t.Fatalf("the peer without an origin is incomplete a minute after the swarm came back on: %+v", leech.sess.Stats())
		}
		h.checkBytes(leech)
		back := trafficOf(swarm)
		t.Logf("back on: the swarm uploaded %d more bytes", back.out-settled.out)
		if back.out == settled.out {
			t.Fatal("the swarm uploaded nothing after coming back on")
		}
		for _, p := range all {
			p.stop()
		}
	})
}

// TestLeechOnlyUploadsNothing: a peer leech-only from the start fetches
// from peers and sends them nothing, another switched to leech-only
// mid-transfer stops sending, and the rest still complete.
func TestLeechOnlyUploadsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const chunk, size = 64 << 10, 4 << 20
		h := newHarness(t, "leech", 15, chunk, size)
		var peers []*hpeer
		for i := range 5 {
			peers = append(peers, h.addPeer(fmt.Sprintf("peer-%d", i), true))
		}
		h.configure = func(id string, c *Config) { c.Mode = ModeLeechOnly }
		metered := h.addPeer("metered", true)
		h.configure = nil
		late := h.addPeer("late", true)
		if !pollVirtual(time.Minute, func() bool { return late.sess.Stats().BytesUploaded > 0 }) {
			t.Fatal("the late peer uploaded nothing in a minute")
		}
		late.sess.SetMode(ModeLeechOnly)
		sentBefore := late.sess.Stats().BytesUploaded

		all := append([]*hpeer{metered, late}, peers...)
		h.waitAll(all, 5*time.Minute)
		for _, p := range all {
			h.checkBytes(p)
		}
		if st := metered.sess.Stats(); st.BytesUploaded != 0 || st.BytesFromPeers == 0 || st.Mode != ModeLeechOnly {
			t.Fatalf("leech-only peer: uploaded %d bytes, %d from peers, mode %v; want 0, some, leech-only", st.BytesUploaded, st.BytesFromPeers, st.Mode)
		}
		st := late.sess.Stats()
		t.Logf("switched peer: %d bytes sent before the switch, %d in all", sentBefore, st.BytesUploaded)
		if st.BytesUploaded-sentBefore > int64(st.Peers)*chunk {
			t.Fatalf("switched peer sent %d bytes after going leech-only, beyond one chunk per connection", st.BytesUploaded-sentBefore)
		}
		for _, p := range all {
			p.stop()
		}
	})
}

// TestOffFetchesDueChunksFromOriginAtOnce: a viewer fetching from a seed
// too slow to matter switches off with requests in flight to it; the
// chunks it then wants by a deadline a minute away come from the origin
// at once, not after a request timeout, the grace or the deadline.
func TestOffFetchesDueChunksFromOriginAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const chunk, n = 64 << 10, 24
		h := newHarness(t, "due", 16, chunk, n*chunk)
		capUploads(h, 4<<10) // a chunk every 16 s after the first burst
		seed := h.addPeer("seed", true)
		h.waitAll([]*hpeer{seed}, time.Minute)
		h.configure = nil
		h.onDemand = true
		viewer := h.addPeer("viewer", true)
		in := viewer.sess.Want(Range{From: 0, To: n})
		defer in.Release()
		inFlight := func() int {
			s := viewer.sess
			s.mu.Lock()
			defer s.mu.Unlock()
			k := 0
			for _, p := range s.peers {
				k += len(p.requested)
			}
			return k
		}
		if !pollVirtual(time.Minute, func() bool { return viewer.sess.Stats().BytesFromPeers > 0 && inFlight() > 0 }) {
			t.Fatalf("no chunk from the seed and none asked of it after a minute: %+v", viewer.sess.Stats())
		}
		viewer.sess.SetMode(ModeOff)
		if k := inFlight(); k != 0 {
			t.Fatalf("%d requests in flight to peers right after switching off", k)
		}
		switched := time.Now()
		viewer.sess.Prioritize(0, n, switched.Add(time.Minute), 0)
		for i := range n {
			if err := viewer.sess.WaitChunk(t.Context(), i); err != nil {
				t.Fatal(err)
			}
		}
		took := time.Since(switched)
		st := viewer.sess.Stats()
		t.Logf("every chunk %v after the switch: %d bytes from peers, %d from the origin", took, st.BytesFromPeers, st.BytesFromOrigin)
		if took >= policy.DefaultGrace {
			t.Fatalf("the due chunks took %v after switching off; want less than the grace (%v)", took, policy.DefaultGrace)
		}
		if st.BytesFromPeers+st.BytesFromOrigin != n*chunk || st.BytesFromOrigin == 0 {
			t.Fatalf("%d bytes from peers and %d from the origin; want %d in all, some from the origin", st.BytesFromPeers, st.BytesFromOrigin, n*chunk)
		}
		h.checkBytes(viewer)
		viewer.stop()
		seed.stop()
	})
}

// TestOnPeersDoNotWaitOnOffPeers: with half a swarm off (a region's kill
// switch), the peers still on do not wait for the off ones to fetch the
// chunks the origin designation gives them (an off peer would never pass
// them on): they finish about as soon as a swarm of their own would, not
// after a takeover wait per off peer ranked before them (over 20 s here).
func TestOnPeersDoNotWaitOnOffPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const chunk, size = 64 << 10, 8 << 20
		h := newHarness(t, "mixed", 17, chunk, size)
		var on, all []*hpeer
		for i := range 8 {
			off := i%2 == 0
			h.configure = func(id string, c *Config) {
				c.Upload = NewBucket(1<<20, nil)
				if off {
					c.Mode = ModeOff
				}
			}
			p := h.addPeer(fmt.Sprintf("peer-%d", i), true)
			all = append(all, p)
			if !off {
				on = append(on, p)
			}
		}
		start := time.Now()
		h.waitAll(on, 5*time.Minute)
		took := time.Since(start)
		t.Logf("the peers still on complete in %v; origin egress %.2f × F", took, float64(h.origin.BytesServed())/size)
		if limit := 2 * policy.TakeoverWait; took > limit {
			t.Fatalf("the peers still on took %v; want at most %v", took, limit)
		}
		h.waitAll(all, time.Minute)
		for _, p := range all {
			h.checkBytes(p)
			if st := p.sess.Stats(); p.sess.Mode() == ModeOff && (st.PeerDataReceived != 0 || st.BytesUploaded != 0) {
				t.Fatalf("an off peer moved peer data: %+v", st)
			}
			p.stop()
		}
	})
}

// TestNoUploadModesOnTheWire speaks the wire protocol to a seed that
// uploads nothing (off, leech-only): its handshake offers no chunk, a
// REQUEST is answered REJECT(choked) and never DATA; switched on, it
// unchokes the interested peer, offers its chunks again (BITFIELD) and
// serves the same request.
func TestNoUploadModesOnTheWire(t *testing.T) {
	for _, mode := range []Mode{ModeOff, ModeLeechOnly} {
		t.Run(mode.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const chunk, n = 64 << 10, 8
				h := newHarness(t, "wire", 18, chunk, n*chunk)
				seed := h.addPeer("seed", true)
				h.waitAll([]*hpeer{seed}, time.Minute)
				seed.sess.SetMode(mode)

				host, err := h.net.NewHost(netx.PeerID("raw"))
				if err != nil {
					t.Fatal(err)
				}
				defer host.Close()
				st, err := host.NewStream(h.ctx, seed.node.ID(), nil, wire.ProtocolID)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Reset()
				send := func(m wire.Message) {
					t.Helper()
					if err := wire.WriteMessage(st, m); err != nil {
						t.Fatal(err)
					}
				}
				r := wire.NewReader(st, wire.MaxFrame)
				next := func() wire.Message {
					t.Helper()
					m, err := r.Next()
					if err != nil {
						t.Fatal(err)
					}
					if d, ok := m.(*wire.Data); ok {
						t.Fatalf("DATA for chunk %d from a seed in mode %v", d.Index, seed.sess.Mode())
					}
					return m
				}
				send(&wire.Handshake{Content: h.content.ID, Client: "raw/1", Bits: wire.NewBitfield(n)})
				hs, ok := next().(*wire.Handshake)
				if !ok {
					t.Fatal("no handshake from the seed")
				}
				if hs.Bits.Count() != 0 || hs.Flags&wire.FlagSeeder != 0 {
					t.Fatalf("seed in mode %v offers %v chunks, flags %b; want none, not a seeder", mode, hs.Bits, hs.Flags)
				}
				send(&wire.Interested{})
				req := &wire.Request{Index: 3, Length: chunk}
				send(req)
				for {
					m := next()
					if rej, ok := m.(*wire.Reject); ok {
						if rej.Index != 3 || rej.Reason != wire.ReasonChoked {
							t.Fatalf("REJECT %d (%v); want chunk 3, choked", rej.Index, rej.Reason)
						}
						break
					}
				}

				seed.sess.SetMode(ModeOn)
				unchoked, offered := false, false
				for !unchoked || !offered {
					switch m := next().(type) {
					case *wire.Unchoke:
						unchoked = true
					case *wire.BitfieldUpdate:
						offered = m.Bits.Complete()
					}
				}
				send(req)
				m, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if d, ok := m.(*wire.Data); !ok || d.Index != 3 || len(d.Payload) != chunk {
					t.Fatalf("after switching on, the request got %v; want DATA of chunk 3", m.Type())
				}
				synctest.Wait() // the seed's writer counts the chunk after sending it
				if up := seed.sess.Stats().BytesUploaded; up != chunk {
					t.Fatalf("seed uploaded %d bytes; want one chunk, %d", up, chunk)
				}
				st.Reset()
				seed.stop()
			})
		})
	}
}
