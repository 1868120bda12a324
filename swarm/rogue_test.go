package swarm

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/wire"
)

// rogue is a peer that speaks the wire protocol correctly but lies: it
// claims to be a seeder, unchokes whoever connects and answers every request
// with bytes of the right length and the wrong content.
type rogue struct {
	host       netx.Host
	served     atomic.Int64 // corrupted DATA frames sent
	handshakes atomic.Int64 // handshakes received for the content
}

// addRogue starts a rogue on h.net that every peer added afterwards dials.
func (h *harness) addRogue(id string) *rogue {
	h.t.Helper()
	host, err := h.net.NewHost(netx.PeerID(id))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { host.Close() })
	r := &rogue{host: host}
	host.SetStreamHandler(wire.ProtocolID, func(st netx.Stream) { r.serve(st, h.content) })
	h.alsoDial(host.ID())
	return r
}

func (r *rogue) serve(st netx.Stream, c *Content) {
	defer st.Reset()
	rd := wire.NewReader(st, wire.MaxFrame)
	m, err := rd.Next()
	if hs, ok := m.(*wire.Handshake); err != nil || !ok || hs.Content != c.ID {
		return
	}
	r.handshakes.Add(1)
	bits := wire.NewBitfield(c.Len())
	bits.SetAll()
	if wire.WriteMessage(st, &wire.Handshake{Content: c.ID, Flags: wire.FlagSeeder, Client: "rogue/1", Bits: bits}) != nil ||
		wire.WriteMessage(st, &wire.Unchoke{}) != nil {
		return
	}
	for {
		m, err := rd.Next()
		if err != nil {
			return
		}
		req, ok := m.(*wire.Request)
		if !ok {
			continue
		}
		p := make([]byte, req.Length)
		for k := range p {
			p[k] = byte(req.Index) ^ 0x5a
		}
		if wire.WriteMessage(st, &wire.Data{Index: req.Index, Offset: req.Offset, Payload: p}) != nil {
			return
		}
		r.served.Add(1)
	}
}

// rawPeer is a wire endpoint the test drives frame by frame.
type rawPeer struct {
	id netx.PeerID
	st netx.Stream
	r  *wire.Reader
}

// dialRaw connects a raw endpoint to p's session with an empty bitfield and
// returns once p lists it as a peer.
func (h *harness) dialRaw(id string, p *hpeer) *rawPeer {
	h.t.Helper()
	host, err := h.net.NewHost(netx.PeerID(id))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { host.Close() })
	st, err := host.NewStream(h.ctx, p.node.ID(), nil, wire.ProtocolID)
	if err != nil {
		h.t.Fatal(err)
	}
	hs := &wire.Handshake{Content: h.content.ID, Client: "raw/1", Bits: wire.NewBitfield(h.content.Len())}
	if err := wire.WriteMessage(st, hs); err != nil {
		h.t.Fatal(err)
	}
	r := wire.NewReader(st, wire.MaxFrame)
	if m, err := r.Next(); err != nil {
		h.t.Fatal(err)
	} else if _, ok := m.(*wire.Handshake); !ok {
		h.t.Fatalf("first frame from %s is %v, want a handshake", p.node.ID(), m.Type())
	}
	rp := &rawPeer{id: host.ID(), st: st, r: r}
	waitFor(h.t, 10*time.Second, id+" attached", func() bool { return slices.Contains(p.sess.Peers(), rp.id) })
	return rp
}

// drain reads until the stream fails and returns the error that ended it.
func (rp *rawPeer) drain() error {
	for {
		if _, err := rp.r.Next(); err != nil {
			return err
		}
	}
}

// waitFor polls cond until it holds; limit only stops a hung test.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v: %s", limit, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkStoreExact asserts p's store holds the content's chunks and nothing
// else: a rejected chunk left no bytes behind under any name.
func (h *harness) checkStoreExact(p *hpeer) {
	h.t.Helper()
	var size int64
	distinct := map[core.Hash]bool{}
	for i := range h.content.Len() {
		if !distinct[h.content.Hash(i)] {
			distinct[h.content.Hash(i)] = true
			size += int64(h.content.Size(i))
		}
	}
	if b, n := p.store.Usage(); b != size || n != len(distinct) {
		h.t.Fatalf("%s store holds %d chunks, %d bytes; want %d, %d", p.node.ID(), n, b, len(distinct), size)
	}
}
