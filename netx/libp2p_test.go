package netx

import (
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func newLoopbackHost(t testing.TB) Host {
	t.Helper()
	h, err := NewLibp2pHost(t.Context(), Libp2pConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// addrWith returns h's first address containing marker.
func addrWith(t testing.TB, h Host, marker string) string {
	t.Helper()
	for _, a := range h.Addrs() {
		if strings.Contains(a, marker) {
			return a
		}
	}
	t.Fatalf("host has no %s address among %v", marker, h.Addrs())
	return ""
}

func TestLibp2pTransfer(t *testing.T) {
	tests := []struct {
		transport string
		marker    string // substring of the only address we dial
	}{
		{"tcp", "/tcp/"},
		{"quic", "/quic-v1"},
	}
	for _, tc := range tests {
		t.Run(tc.transport, func(t *testing.T) {
			client, server := newLoopbackHost(t), newLoopbackHost(t)
			server.SetStreamHandler(sinkProto, sink)
			addr := addrWith(t, server, tc.marker)

			s, err := client.NewStream(t.Context(), server.ID(), []string{addr}, sinkProto)
			if err != nil {
				t.Fatal(err)
			}
			if s.RemotePeer() != server.ID() {
				t.Errorf("RemotePeer = %s, want %s", s.RemotePeer(), server.ID())
			}
			data := payload(8, 8<<20)
			want := sha256.Sum256(data)
			mustEqual(t, roundTrip(t, s, data), want[:])

			// Only the address we dialed was known, so the connection must
			// be on the transport under test.
			pid, _ := peer.Decode(string(server.ID()))
			conns := client.(*libp2pHost).h.Network().ConnsToPeer(pid)
			if len(conns) == 0 {
				t.Fatal("no connection to server")
			}
			if got := conns[0].RemoteMultiaddr().String(); !strings.Contains(got, tc.marker) {
				t.Errorf("connected over %s, want %s", got, tc.transport)
			}
			// An authenticated remote key means a secure channel (TLS or
			// Noise over TCP, QUIC's built-in TLS).
			if k := conns[0].RemotePublicKey(); k == nil {
				t.Error("connection is not authenticated")
			}
		})
	}
}

func TestLibp2pFullAddrAndErrors(t *testing.T) {
	client, server := newLoopbackHost(t), newLoopbackHost(t)
	hung := make(chan error, 1)
	server.SetStreamHandler("/hang", func(s Stream) {
		defer s.Close()
		s.Write([]byte("ready"))
		_, err := io.ReadAll(s)
		hung <- err
	})

	// The pasted bootstrap form works end to end.
	id, addr, err := ParseFullAddr(FullAddrs(server)[0])
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.NewStream(t.Context(), id, []string{addr}, "/hang")
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the handler to run: libp2p negotiates lazily once identify
	// has told us the server speaks /hang, and a reset that overtakes the
	// negotiation never reaches a handler.
	if _, err := io.ReadFull(s, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	s.Reset()
	if err := <-hung; !errors.Is(err, ErrStreamReset) {
		t.Errorf("server read after client reset: err = %v, want ErrStreamReset", err)
	}

	if _, err := client.NewStream(t.Context(), server.ID(), nil, "/nope"); !errors.Is(err, ErrNoProtocol) {
		t.Errorf("unsupported protocol: err = %v, want ErrNoProtocol", err)
	}
	if _, err := client.NewStream(t.Context(), "not-a-peer-id", nil, "/hang"); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("bad peer ID: err = %v, want ErrUnknownPeer", err)
	}
	if _, err := client.NewStream(t.Context(), server.ID(), []string{"/ip4/nope"}, "/hang"); !errors.Is(err, ErrBadAddr) {
		t.Errorf("bad address: err = %v, want ErrBadAddr", err)
	}
	client.Close()
	if _, err := client.NewStream(t.Context(), server.ID(), nil, "/hang"); !errors.Is(err, ErrHostClosed) {
		t.Errorf("closed host: err = %v, want ErrHostClosed", err)
	}
}

func TestLibp2pUnreachablePeer(t *testing.T) {
	client, gone := newLoopbackHost(t), newLoopbackHost(t)
	addr, id := addrWith(t, gone, "/tcp/"), gone.ID()
	gone.Close()
	if _, err := client.NewStream(t.Context(), id, []string{addr}, "/x"); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("dial closed peer: err = %v, want ErrUnknownPeer", err)
	}
}

func TestLibp2pConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Libp2pConfig
	}{
		{"bad listen addr", Libp2pConfig{ListenAddrs: []string{"tcp://127.0.0.1:0"}}},
		{"high below low", Libp2pConfig{ConnLow: 50, ConnHigh: 10}},
	}
	for _, tc := range tests {
		if h, err := NewLibp2pHost(t.Context(), tc.cfg); err == nil {
			h.Close()
			t.Errorf("%s: no error", tc.name)
		}
	}
}
