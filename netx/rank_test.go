package netx

import (
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

func TestBulkRankerDialsTCPFirst(t *testing.T) {
	parse := func(ss ...string) []ma.Multiaddr {
		var out []ma.Multiaddr
		for _, s := range ss {
			out = append(out, ma.StringCast(s))
		}
		return out
	}
	const relay = "/ip4/198.18.0.9/tcp/4002/p2p/12D3KooWGRUVh7cXQkFQ2S6Xn6AQqJZ8H7AQf9W7nJ5yJrCMyB3Q/p2p-circuit"
	cases := []struct {
		name  string
		addrs []string
		want  []string // addresses in dial order, each "addr@delay"
	}{
		{"private: TCP at once, QUIC a round trip later",
			[]string{"/ip4/10.0.0.2/udp/4001/quic-v1", "/ip4/10.0.0.2/tcp/4001"},
			[]string{"/ip4/10.0.0.2/tcp/4001@0s", "/ip4/10.0.0.2/udp/4001/quic-v1@30ms"}},
		{"public: QUIC a happy-eyeballs interval later",
			[]string{"/ip4/1.2.3.4/udp/4001/quic-v1", "/ip4/1.2.3.4/tcp/4001"},
			[]string{"/ip4/1.2.3.4/tcp/4001@0s", "/ip4/1.2.3.4/udp/4001/quic-v1@250ms"}},
		{"a relay circuit stays behind the direct addresses",
			[]string{relay, "/ip4/1.2.3.4/udp/4001/quic-v1", "/ip4/1.2.3.4/tcp/4001"},
			[]string{"/ip4/1.2.3.4/tcp/4001@0s", "/ip4/1.2.3.4/udp/4001/quic-v1@250ms", relay + "@750ms"}},
	}
	for _, tc := range cases {
		got := bulkRanker(parse(tc.addrs...))
		var order []string
		for _, d := range got {
			order = append(order, d.Addr.String()+"@"+d.Delay.String())
		}
		if strings.Join(order, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, order, tc.want)
		}
	}
	// Only QUIC (or only TCP): libp2p's own ranking, unchanged.
	for _, only := range [][]string{
		{"/ip4/198.18.0.2/udp/4001/quic-v1", "/ip4/198.18.0.3/udp/4001/quic-v1"},
		{"/ip4/198.18.0.2/tcp/4001", "/ip4/198.18.0.3/tcp/4001"},
	} {
		got, want := bulkRanker(parse(only...)), swarm.DefaultDialRanker(parse(only...))
		if len(got) != len(want) {
			t.Fatalf("%v: %v, want %v", only, got, want)
		}
		for k := range got {
			if !got[k].Addr.Equal(want[k].Addr) || got[k].Delay != want[k].Delay {
				t.Errorf("%v: %v, want %v", only, got, want)
			}
		}
	}
}

// A host that listens on TCP and QUIC is reached over TCP when the dialer
// knows both addresses.
func TestHostsConnectOverTCPWhenBothAreOffered(t *testing.T) {
	client, server := newLoopbackHost(t), newLoopbackHost(t)
	server.SetStreamHandler(sinkProto, sink)
	addrs := server.Addrs()
	if !strings.Contains(strings.Join(addrs, " "), "/quic-v1") || !strings.Contains(strings.Join(addrs, " "), "/tcp/") {
		t.Fatalf("server listens on %v, want TCP and QUIC", addrs)
	}
	s, err := client.NewStream(t.Context(), server.ID(), addrs, sinkProto)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	pid, _ := peer.Decode(string(server.ID()))
	conns := client.(*libp2pHost).h.Network().ConnsToPeer(pid)
	if len(conns) == 0 {
		t.Fatal("no connection to server")
	}
	for _, c := range conns {
		if got := c.RemoteMultiaddr().String(); !strings.Contains(got, "/tcp/") {
			t.Errorf("connected over %s, want TCP", got)
		}
	}
}
