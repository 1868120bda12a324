package discovery

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/netx"
)

// fakeSwarm is a swarm whose neighbours the test sets; Connect records the
// dial and, for peers in joinable, makes them neighbours. Connect blocks
// while hold is not nil and open.
type fakeSwarm struct {
	mu       sync.Mutex
	nbrs     []netx.PeerID
	joinable map[string]bool
	dialled  []string
	hold     chan struct{}
}

func (f *fakeSwarm) Neighbours() []netx.PeerID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.nbrs)
}

func (f *fakeSwarm) Connect(ctx context.Context, p PeerInfo) error {
	f.mu.Lock()
	f.dialled = append(f.dialled, p.Peer)
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.joinable[p.Peer] {
		return fmt.Errorf("%s: no answer", p.Peer)
	}
	f.nbrs = append(f.nbrs, netx.PeerID(p.Peer))
	return nil
}

func (f *fakeSwarm) dials() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.dialled)
}

// pexRig runs PEX on host "a" of a MemNetwork for one content, with a long
// interval so no round of its own runs during the test.
type pexRig struct {
	net   *netx.MemNetwork
	a     netx.Host
	sw    *fakeSwarm
	id    core.ContentID
	stop  func() // ends Run and waits for its dials
	hosts map[string]netx.Host
}

func newPEXRig(t *testing.T, dials int) *pexRig {
	t.Helper()
	n := netx.NewMemNetwork()
	a, err := n.NewHost("a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	r := &pexRig{net: n, a: a, sw: &fakeSwarm{joinable: map[string]bool{}}, id: core.ContentID{7}, hosts: map[string]netx.Host{}}
	x := NewPEX(PEXConfig{Host: a, Interval: time.Hour, Dials: dials})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.Run(ctx, r.id, r.sw, nil)
	}()
	// Run registers the swarm before its first round; wait for it.
	for {
		x.mu.Lock()
		ok := x.swarms[r.id] != nil
		x.mu.Unlock()
		if ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	r.stop = func() { cancel(); <-done }
	t.Cleanup(r.stop)
	return r
}

// send delivers m from host id to a and waits until a has dealt with it.
func (r *pexRig) send(t *testing.T, from string, m *PEXMessage) {
	t.Helper()
	h := r.host(t, from)
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	st, err := h.NewStream(context.Background(), "a", nil, PEXProtocol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(b); err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	io.Copy(io.Discard, st) // ends when a closes its end: the message is dealt with
	st.Close()
}

func (r *pexRig) host(t *testing.T, id string) netx.Host {
	t.Helper()
	if h := r.hosts[id]; h != nil {
		return h
	}
	h, err := r.net.NewHost(netx.PeerID(id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	r.hosts[id] = h
	return h
}

func names(prefix string, n int) []PeerInfo {
	out := make([]PeerInfo, n)
	for i := range out {
		out[i] = PeerInfo{Peer: fmt.Sprintf("%s%d", prefix, i), Addrs: []string{"/memory/1"}}
	}
	return out
}

func TestPEXIgnoresSendersOutsideTheSwarm(t *testing.T) {
	r := newPEXRig(t, 4)
	r.send(t, "stranger", &PEXMessage{Content: r.id, Peers: names("s", 3)})
	r.sw.mu.Lock()
	r.sw.nbrs = []netx.PeerID{"n"}
	r.sw.mu.Unlock()
	r.send(t, "n", &PEXMessage{Content: core.ContentID{8}, Peers: names("other", 2)}) // another swarm
	r.stop()
	if d := r.sw.dials(); len(d) != 0 {
		t.Fatalf("dialled %v on the word of a peer outside the swarm or of another swarm", d)
	}
}

func TestPEXOneMessagePerNeighbourPerInterval(t *testing.T) {
	r := newPEXRig(t, 4)
	r.sw.mu.Lock()
	r.sw.nbrs = []netx.PeerID{"n"}
	r.sw.mu.Unlock()
	r.send(t, "n", &PEXMessage{Content: r.id, Peers: names("first", 2)})
	r.send(t, "n", &PEXMessage{Content: r.id, Peers: names("second", 2)})
	r.stop()
	d := r.sw.dials()
	slices.Sort(d)
	if !slices.Equal(d, []string{"first0", "first1"}) {
		t.Fatalf("dialled %v, want only the first message's peers", d)
	}
}

func TestPEXDialsAreBounded(t *testing.T) {
	r := newPEXRig(t, 2)
	r.sw.mu.Lock()
	r.sw.nbrs = []netx.PeerID{"n"}
	r.sw.hold = make(chan struct{})
	hold := r.sw.hold
	r.sw.mu.Unlock()
	r.send(t, "n", &PEXMessage{Content: r.id, Peers: names("p", MaxPEXPeers)})
	for len(r.sw.dials()) < 2 {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	r.stop()
	if d := r.sw.dials(); len(d) != 2 {
		t.Fatalf("%d dials for one message with 2 dial slots, want 2 (the rest dropped): %v", len(d), d)
	}
}
