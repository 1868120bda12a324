package discovery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/shoal-cdn/shoal/core"
)

// PEXProtocol is the libp2p protocol of peer exchange: one stream carries
// one PEXMessage from the dialler, then closes.
const PEXProtocol = "/shoal/pex/1"

// Bounds of a PEX message. They make the largest message
// 1+32+2+MaxPEXPeers·(2+MaxPeerIDLen+1+MaxPEXAddrs·(2+MaxAddrLen)) bytes,
// under MaxPEXBytes.
const (
	pexVersion  = 1
	MaxPEXPeers = 16 // peers in one message
	MaxPEXAddrs = 4  // addresses per peer
	MaxPEXBytes = 1 + core.HashSize + 2 + MaxPEXPeers*(2+MaxPeerIDLen+1+MaxPEXAddrs*(2+MaxAddrLen))
)

// PEXMessage tells a neighbour in the swarm of Content about other peers
// of that swarm the sender is connected to.
type PEXMessage struct {
	Content core.ContentID
	Peers   []PeerInfo // Region and Seed are not carried
}

// ErrBadPEX means a PEX message broke the format or its bounds.
var ErrBadPEX = errors.New("bad PEX message")

// Encoding, all lengths big-endian:
//
//	version   uint8 (1)
//	content   [32]byte
//	npeers    uint16 (≤ MaxPEXPeers)
//	per peer: idlen uint16 (1..MaxPeerIDLen), id, naddrs uint8 (≤ MaxPEXAddrs),
//	          per addr: alen uint16 (1..MaxAddrLen), addr (UTF-8 multiaddr text)
//
// Nothing may follow the last peer; a peer may appear once.

// MarshalBinary encodes m, refusing what the decoder would refuse.
func (m *PEXMessage) MarshalBinary() ([]byte, error) {
	if len(m.Peers) > MaxPEXPeers {
		return nil, fmt.Errorf("%w: %d peers, at most %d", ErrBadPEX, len(m.Peers), MaxPEXPeers)
	}
	b := make([]byte, 0, 64*len(m.Peers)+64)
	b = append(b, pexVersion)
	b = append(b, m.Content[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Peers)))
	seen := make(map[string]bool, len(m.Peers))
	for _, p := range m.Peers {
		if err := checkPEXString("peer ID", p.Peer, MaxPeerIDLen); err != nil {
			return nil, err
		}
		if seen[p.Peer] {
			return nil, fmt.Errorf("%w: peer %s twice", ErrBadPEX, p.Peer)
		}
		seen[p.Peer] = true
		if len(p.Addrs) > MaxPEXAddrs {
			return nil, fmt.Errorf("%w: peer %s has %d addresses, at most %d", ErrBadPEX, p.Peer, len(p.Addrs), MaxPEXAddrs)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.Peer)))
		b = append(b, p.Peer...)
		b = append(b, byte(len(p.Addrs)))
		for _, a := range p.Addrs {
			if err := checkPEXString("address", a, MaxAddrLen); err != nil {
				return nil, err
			}
			b = binary.BigEndian.AppendUint16(b, uint16(len(a)))
			b = append(b, a...)
		}
	}
	return b, nil
}

func checkPEXString(what, s string, limit int) error {
	if len(s) == 0 || len(s) > limit || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s of %d bytes: want 1 to %d bytes of UTF-8", ErrBadPEX, what, len(s), limit)
	}
	return nil
}

// UnmarshalBinary decodes one message, strictly: every length within its
// bound, no duplicate peer, no trailing byte.
func (m *PEXMessage) UnmarshalBinary(b []byte) error {
	if len(b) > MaxPEXBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadPEX, len(b), MaxPEXBytes)
	}
	d := pexDecoder{b: b}
	if v := d.u8(); d.err == nil && v != pexVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrBadPEX, v, pexVersion)
	}
	var out PEXMessage
	copy(out.Content[:], d.take(core.HashSize))
	n := int(d.u16())
	if d.err == nil && n > MaxPEXPeers {
		return fmt.Errorf("%w: %d peers, at most %d", ErrBadPEX, n, MaxPEXPeers)
	}
	seen := map[string]bool{}
	for i := 0; i < n && d.err == nil; i++ {
		id := d.str("peer ID", MaxPeerIDLen)
		if d.err == nil && seen[id] {
			return fmt.Errorf("%w: peer %s twice", ErrBadPEX, id)
		}
		seen[id] = true
		na := int(d.u8())
		if d.err == nil && na > MaxPEXAddrs {
			return fmt.Errorf("%w: peer %s has %d addresses, at most %d", ErrBadPEX, id, na, MaxPEXAddrs)
		}
		pi := PeerInfo{Peer: id, Addrs: make([]string, 0, na)}
		for range na {
			if a := d.str("address", MaxAddrLen); d.err == nil {
				pi.Addrs = append(pi.Addrs, a)
			}
		}
		out.Peers = append(out.Peers, pi)
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the last peer", ErrBadPEX, len(d.b))
	}
	*m = out
	return nil
}

// pexDecoder reads big-endian fields; the first error sticks.
type pexDecoder struct {
	b   []byte
	err error
}

func (d *pexDecoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("%w: truncated", ErrBadPEX)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *pexDecoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *pexDecoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *pexDecoder) str(what string, limit int) string {
	n := int(d.u16())
	if d.err != nil {
		return ""
	}
	if n == 0 || n > limit {
		d.err = fmt.Errorf("%w: %s of %d bytes: want 1 to %d", ErrBadPEX, what, n, limit)
		return ""
	}
	s := string(d.take(n))
	if d.err == nil && !utf8.ValidString(s) {
		d.err = fmt.Errorf("%w: %s is not UTF-8", ErrBadPEX, what)
	}
	return s
}
