package netx

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ParseAddrs parses multiaddr strings for dialing. A trailing /p2p/ID is
// allowed and dropped, so both announced forms are accepted.
func ParseAddrs(addrs []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(addrs))
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w: %w", s, ErrBadAddr, err)
		}
		if t, _ := peer.SplitAddr(m); t != nil {
			m = t
		}
		out = append(out, m)
	}
	return out, nil
}

// ParseFullAddr splits "/ip4/…/tcp/…/p2p/12D3…", the form a user pastes as a
// bootstrap peer, into the peer's ID and its transport address.
func ParseFullAddr(s string) (PeerID, string, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return "", "", fmt.Errorf("address %q: %w: %w", s, ErrBadAddr, err)
	}
	t, id := peer.SplitAddr(m)
	if id == "" {
		return "", "", fmt.Errorf("address %q: %w: no /p2p/ peer ID", s, ErrBadAddr)
	}
	if t == nil {
		return "", "", fmt.Errorf("address %q: %w: no transport before /p2p/", s, ErrBadAddr)
	}
	return PeerID(id.String()), t.String(), nil
}

// FullAddrs returns h's addresses with the /p2p/ID suffix, ready to paste as
// a bootstrap peer.
func FullAddrs(h Host) []string {
	addrs := h.Addrs()
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a + "/p2p/" + string(h.ID())
	}
	return out
}
