package discovery

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

func pexSample() *PEXMessage {
	return &PEXMessage{Content: core.ContentID{1, 2, 3}, Peers: []PeerInfo{
		{Peer: "12D3KooWA", Addrs: []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"}},
		{Peer: "12D3KooWB", Addrs: []string{}},
	}}
}

func TestPEXRoundTrip(t *testing.T) {
	m := pexSample()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got PEXMessage
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, m) {
		t.Fatalf("round trip: got %+v, want %+v", got, *m)
	}
}

func TestPEXDecoderIsStrict(t *testing.T) {
	good, _ := pexSample().MarshalBinary()
	many := &PEXMessage{}
	for i := range MaxPEXPeers + 1 {
		many.Peers = append(many.Peers, PeerInfo{Peer: strings.Repeat("p", i+1)})
	}
	over := append([]byte{pexVersion}, make([]byte, core.HashSize)...)
	over = append(over, 0, MaxPEXPeers+1)
	dup := &PEXMessage{Peers: []PeerInfo{{Peer: "a"}, {Peer: "b"}}}
	dupB, _ := dup.MarshalBinary()
	dupB = bytes.Replace(dupB, []byte{0, 1, 'b'}, []byte{0, 1, 'a'}, 1)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"wrong version", append([]byte{2}, good[1:]...), "version 2"},
		{"truncated", good[:len(good)-3], "truncated"},
		{"trailing byte", append(append([]byte{}, good...), 0), "after the last peer"},
		{"too many peers", over, "at most 16"},
		{"duplicate peer", dupB, "twice"},
		{"empty peer ID", append(append([]byte{pexVersion}, make([]byte, core.HashSize)...), 0, 1, 0, 0), "peer ID of 0 bytes"},
		{"too large", make([]byte, MaxPEXBytes+1), "at most"},
	}
	for _, c := range cases {
		var m PEXMessage
		err := m.UnmarshalBinary(c.b)
		if !errors.Is(err, ErrBadPEX) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrBadPEX saying %q", c.name, err, c.want)
		}
	}
	if _, err := many.MarshalBinary(); !errors.Is(err, ErrBadPEX) {
		t.Errorf("encoding %d peers: %v, want ErrBadPEX", len(many.Peers), err)
	}
}

// FuzzPEXMessage: whatever the bytes, decoding never panics, stays within
// the bounds, and decode → encode → decode is stable.
func FuzzPEXMessage(f *testing.F) {
	b, _ := pexSample().MarshalBinary()
	f.Add(b)
	e, _ := (&PEXMessage{}).MarshalBinary()
	f.Add(e)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m PEXMessage
		if err := m.UnmarshalBinary(b); err != nil {
			return
		}
		if len(m.Peers) > MaxPEXPeers {
			t.Fatalf("%d peers decoded", len(m.Peers))
		}
		enc, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode of a decoded message: %v", err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", enc, b)
		}
		var m2 PEXMessage
		if err := m2.UnmarshalBinary(enc); err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode of re-encoding: %v, %+v vs %+v", err, m2, m)
		}
	})
}
