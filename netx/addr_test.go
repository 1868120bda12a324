package netx

import (
	"errors"
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
