package netx

import (
	"errors"
	"slices"
	"testing"
)

const testPeer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

func TestParseFullAddr(t *testing.T) {
	tests := []struct {
		in       string
		wantPeer PeerID
		wantAddr string
		wantErr  error
	}{
		{"/ip4/127.0.0.1/tcp/4001/p2p/" + testPeer, testPeer, "/ip4/127.0.0.1/tcp/4001", nil},
		{"/ip4/198.18.0.2/udp/4001/quic-v1/p2p/" + testPeer, testPeer, "/ip4/198.18.0.2/udp/4001/quic-v1", nil},
		{"/ip4/127.0.0.1/tcp/4001", "", "", ErrBadAddr},
		{"/p2p/" + testPeer, "", "", ErrBadAddr},
		{"127.0.0.1:4001", "", "", ErrBadAddr},
		{"", "", "", ErrBadAddr},
	}
	for _, tc := range tests {
		p, a, err := ParseFullAddr(tc.in)
		if !errors.Is(err, tc.wantErr) || p != tc.wantPeer || a != tc.wantAddr {
			t.Errorf("ParseFullAddr(%q) = %q, %q, %v; want %q, %q, %v", tc.in, p, a, err, tc.wantPeer, tc.wantAddr, tc.wantErr)
		}
	}
}

func TestParseAddrsDropsPeerSuffix(t *testing.T) {
	got, err := ParseAddrs([]string{"/ip4/127.0.0.1/tcp/1/p2p/" + testPeer, "/ip4/127.0.0.1/udp/2/quic-v1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/udp/2/quic-v1"}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("addr %d = %s, want %s", i, got[i], want[i])
		}
	}
	if _, err := ParseAddrs([]string{"/ip4/999.0.0.1/tcp/1"}); !errors.Is(err, ErrBadAddr) {
		t.Errorf("bad addr: err = %v, want ErrBadAddr", err)
	}
}

func TestPeerIDShort(t *testing.T) {
	if got := PeerID(testPeer).Short(); got != "HWmweQAJU5SA" {
		t.Errorf("Short = %q, want the last 12 characters", got)
	}
	if got := PeerID("mem-1").Short(); got != "mem-1" {
		t.Errorf("Short = %q, want mem-1", got)
	}
}

func TestPackAddrsRoundTrip(t *testing.T) {
	in := []string{"/ip4/127.0.0.1/tcp/4001", "/ip6/::1/udp/4001/quic-v1"}
	packed := PackAddrs(append(in, "not an address"))
	if len(packed) != 2 || len(packed[0]) >= len(in[0]) {
		t.Fatalf("PackAddrs = %q: want 2 addresses, shorter than their text", packed)
	}
	out, err := UnpackAddrs(packed)
	if err != nil || len(out) != 2 || out[0] != in[0] || out[1] != in[1] {
		t.Fatalf("UnpackAddrs = %v, %v; want %v", out, err, in)
	}
	if _, err := UnpackAddrs([]string{"\xff\xff"}); !errors.Is(err, ErrBadAddr) {
		t.Fatalf("UnpackAddrs of garbage: err = %v, want ErrBadAddr", err)
	}
}

// TestReachable: addresses learnt second-hand are kept only when this
// host could sensibly dial them.
func TestReachable(t *testing.T) {
	const id = "12D3KooWGRUVh6ckNHTDcrXvNFg5qZBZzKpLrE8aDsoaUGt2UGJQ"
	in := []string{
		"/ip4/203.0.113.7/tcp/4001",                            // public
		"/ip4/192.168.1.5/tcp/4001",                            // private
		"/ip4/127.0.0.1/tcp/22",                                // loopback
		"/ip4/0.0.0.0/tcp/1",                                   // unspecified
		"/ip4/224.0.0.1/udp/1/quic-v1",                         // multicast
		"/dns4/victim.example/tcp/80",                          // host name
		"/ip4/203.0.113.9/tcp/4002/p2p/" + id + "/p2p-circuit", // circuit through a public relay
		"/ip4/10.0.0.2/tcp/4002/p2p/" + id + "/p2p-circuit",    // through a private one
		"not an address",
	}
	for _, tc := range []struct {
		name string
		own  []string
		want []string
	}{
		{"public host", []string{"/ip4/198.51.100.1/tcp/4001"}, []string{in[0], in[6]}},
		{"host in a LAN", []string{"/ip4/10.0.0.9/tcp/4001"}, []string{in[0], in[1], in[6], in[7]}},
		{"host on loopback", []string{"/ip4/127.0.0.1/tcp/4001"}, []string{in[0], in[2], in[6]}},
		{"host with no address", nil, []string{in[0], in[6]}},
	} {
		if got := Reachable(tc.own, in); !slices.Equal(got, tc.want) {
			t.Errorf("%s: kept %v, want %v", tc.name, got, tc.want)
		}
	}
}
