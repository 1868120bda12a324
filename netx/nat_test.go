package netx

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
)

// newTestRelay starts a relay host on loopback TCP and returns it with its
// multiaddr (with /p2p/ID).
func newTestRelay(t *testing.T) (host.Host, string) {
	t.Helper()
	r, err := NewRelayHost(t.Context(), RelayConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, r.Addrs()[0].String() + "/p2p/" + r.ID().String()
}

// TestPrivateHostOnlyThroughRelay: a host in relay-only mode listens
// nowhere and offers only its relay circuit; another host reaches it
// through the relay, the transfer is intact, both sides report the
// connection as relayed, and the private host refuses to dial a peer
// directly.
func TestPrivateHostOnlyThroughRelay(t *testing.T) {
	_, relayAddr := newTestRelay(t)
	priv, err := NewLibp2pHost(t.Context(), Libp2pConfig{Relays: []string{relayAddr}, Private: true})
	if err != nil {
		t.Fatal(err)
	}
	defer priv.Close()
	other, err := NewLibp2pHost(t.Context(), Libp2pConfig{Relays: []string{relayAddr}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	addrs := priv.Addrs()
	if len(addrs) == 0 {
		t.Fatal("private host offers no address: it got no relay slot")
	}
	for _, a := range addrs {
		if !strings.HasPrefix(a, relayAddr+"/p2p-circuit") {
			t.Fatalf("private host offers %s, want only circuits through %s", a, relayAddr)
		}
	}
	if !strings.Contains(strings.Join(other.Addrs(), " "), "/p2p-circuit") {
		t.Errorf("host with a relay offers no circuit address: %v", other.Addrs())
	}

	priv.SetStreamHandler(sinkProto, sink)
	s, err := other.NewStream(t.Context(), priv.ID(), addrs, sinkProto)
	if err != nil {
		t.Fatal(err)
	}
	data := payload(3, 256<<10)
	want := sha256.Sum256(data)
	mustEqual(t, roundTrip(t, s, data), want[:])
	if k := ConnKinds(other)[priv.ID()]; k != ConnRelayed {
		t.Errorf("other's connection to the private host is %q, want %q", k, ConnRelayed)
	}
	if k := ConnKinds(priv)[other.ID()]; k != ConnRelayed {
		t.Errorf("private host's connection to other is %q, want %q", k, ConnRelayed)
	}

	// A direct dial from the private host is refused by its gater.
	plain := newLoopbackHost(t)
	plain.SetStreamHandler(sinkProto, sink)
	if _, err := priv.NewStream(t.Context(), plain.ID(), plain.Addrs(), sinkProto); err == nil {
		t.Fatal("private host dialled a peer directly")
	}
}

// TestDirectConnKind: hosts that dial each other directly report it so.
func TestDirectConnKind(t *testing.T) {
	a, b := newLoopbackHost(t), newLoopbackHost(t)
	b.SetStreamHandler(sinkProto, sink)
	s, err := a.NewStream(t.Context(), b.ID(), b.Addrs(), sinkProto)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if k := ConnKinds(a)[b.ID()]; k != ConnDirect {
		t.Errorf("connection kind %q, want %q", k, ConnDirect)
	}
}

func TestPrivateNeedsRelay(t *testing.T) {
	if _, err := NewLibp2pHost(t.Context(), Libp2pConfig{Private: true}); err == nil || !strings.Contains(err.Error(), "relay") {
		t.Fatalf("private host without relays: err = %v, want one naming the missing relay", err)
	}
	if _, err := ParseRelays([]string{"/ip4/198.18.0.1/tcp/4002"}); err == nil || !strings.Contains(err.Error(), "/p2p/") {
		t.Fatalf("relay without /p2p/ID: err = %v, want one asking for it", err)
	}
}
