package agent

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm"
)

// pexPeer starts a peer on a real libp2p host on loopback, with no tracker
// and no DHT: peer exchange is its only discovery.
func pexPeer(t *testing.T, ctx context.Context, fx *fixture) *Peer {
	t.Helper()
	p, err := NewPeer(ctx, PeerConfig{
		CacheDir: t.TempDir(), Origin: fx.url, Trust: manifest.NewKeySet(manifest.PublicOf(fx.key)),
		PEXInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, ok := netx.Libp2p(p.host); !ok {
		t.Fatal("the peer's host is not libp2p")
	}
	return p
}

func pexJoin(t *testing.T, ctx context.Context, p *Peer, fx *fixture) *swarm.Session {
	t.Helper()
	s, err := p.Join(ctx, fx.id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pexConnect connects a to b in the swarm by hand (as a tracker would).
func pexConnect(t *testing.T, ctx context.Context, a *Peer, sa *swarm.Session, b *Peer) {
	t.Helper()
	if err := a.Node().Connect(ctx, sa, b.ID(), b.Addrs()); err != nil {
		t.Fatalf("connect %s to %s: %v", a.ID().Short(), b.ID().Short(), err)
	}
}

// TestPEXSpreadsPeers: A knows B, B knows C; peer exchange alone makes A
// and C neighbours.
func TestPEXSpreadsPeers(t *testing.T) {
	fx := publishTree(t, "pex", 31, map[string]int{"a.bin": 4 * testChunk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b, c := pexPeer(t, ctx, fx), pexPeer(t, ctx, fx), pexPeer(t, ctx, fx)
	sa := pexJoin(t, ctx, a, fx)
	pexJoin(t, ctx, b, fx)
	sc := pexJoin(t, ctx, c, fx)
	pexConnect(t, ctx, a, sa, b)
	pexConnect(t, ctx, c, sc, b)
	if slices.Contains(sa.Peers(), c.ID()) {
		t.Fatal("A and C are neighbours before any exchange")
	}
	waitFor(t, "A and C connected through peer exchange", func() bool {
		return slices.Contains(sa.Peers(), c.ID()) && slices.Contains(sc.Peers(), a.ID())
	})
	// The dialler counts the connection after its Connect returns, which
	// can be after both sessions list each other: wait for the count too.
	pexConnected := func() int64 {
		var n int64
		for _, p := range []*Peer{a, c} {
			n += p.Status().Discovery.Sources[SourcePEX].Connected
		}
		return n
	}
	waitFor(t, "A or C counts a peer exchange connection", func() bool { return pexConnected() > 0 })
}

// TestPEXDoesNotPassOnFabricatedPeers: a neighbour D tells A of three peers
// that are not what they claim: an address where nothing answers, a live
// host's address under another peer ID, and a real peer outside the swarm
// (its handshake refuses). A dials each, connects to none, and what A then
// tells its neighbour B names none of them, only D.
func TestPEXDoesNotPassOnFabricatedPeers(t *testing.T) {
	fx := publishTree(t, "pexlie", 32, map[string]int{"a.bin": 4 * testChunk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b, d := pexPeer(t, ctx, fx), pexPeer(t, ctx, fx), pexPeer(t, ctx, fx)
	outsider := pexPeer(t, ctx, fx) // never joins the swarm
	sa, sd := pexJoin(t, ctx, a, fx), pexJoin(t, ctx, d, fx)
	pexConnect(t, ctx, d, sd, a)
	waitFor(t, "A has D as a neighbour", func() bool { return slices.Contains(sa.Peers(), d.ID()) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	lies := []discovery.PeerInfo{
		{Peer: randomPeerID(t), Addrs: []string{closed}},
		{Peer: randomPeerID(t), Addrs: outsider.Addrs()},
		{Peer: string(outsider.ID()), Addrs: outsider.Addrs()},
	}
	msg, err := (&discovery.PEXMessage{Content: fx.id, Peers: lies}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.host.NewStream(ctx, a.ID(), nil, discovery.PEXProtocol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(msg); err != nil {
		t.Fatal(err)
	}
	st.Close()
	waitFor(t, "A has dialled the three entries", func() bool {
		return a.Status().Discovery.Sources[SourcePEX].Learned == int64(len(lies))
	})
	if n := a.Status().Discovery.Sources[SourcePEX].Connected; n != 0 {
		t.Fatalf("A counts %d peer exchange connections from fabricated entries", n)
	}
	for _, l := range lies {
		if slices.Contains(sa.Peers(), netx.PeerID(l.Peer)) {
			t.Fatalf("A took fabricated entry %+v as a neighbour", l)
		}
	}

	// B joins as A's neighbour and records what A tells it.
	var mu sync.Mutex
	var heard []discovery.PEXMessage
	sb := pexJoin(t, ctx, b, fx)
	b.host.SetStreamHandler(discovery.PEXProtocol, func(s netx.Stream) {
		buf, _ := io.ReadAll(io.LimitReader(s, discovery.MaxPEXBytes+1))
		s.Close()
		var m discovery.PEXMessage
		if m.UnmarshalBinary(buf) == nil {
			mu.Lock()
			heard = append(heard, m)
			mu.Unlock()
		}
	})
	pexConnect(t, ctx, b, sb, a)
	waitFor(t, "A tells B of its neighbours", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range heard {
			for _, p := range m.Peers {
				if p.Peer == string(d.ID()) {
					return true
				}
			}
		}
		return false
	})
	mu.Lock()
	defer mu.Unlock()
	for _, m := range heard {
		for _, p := range m.Peers {
			if p.Peer != string(d.ID()) {
				t.Errorf("A passed on %s, which is not a neighbour it connected to (its neighbours: D %s)", p.Peer, d.ID().Short())
			}
		}
	}
}

func randomPeerID(t *testing.T) string {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}
