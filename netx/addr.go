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

// PackAddrs turns multiaddr strings into their binary form (as strings of
// bytes), about a third of the size: what gossip summaries carry. Addresses
// that do not parse are left out.
func PackAddrs(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, s := range addrs {
		if m, err := ma.NewMultiaddr(s); err == nil {
			out = append(out, string(m.Bytes()))
		}
	}
	return out
}

// UnpackAddrs turns binary multiaddrs (PackAddrs) back into strings; it
// fails with ErrBadAddr on any that does not decode.
func UnpackAddrs(packed []string) ([]string, error) {
	out := make([]string, 0, len(packed))
	for k, b := range packed {
		m, err := ma.NewMultiaddrBytes([]byte(b))
		if err != nil {
			return nil, fmt.Errorf("packed address %d: %w: %w", k, ErrBadAddr, err)
		}
		out = append(out, m.String())
	}
	return out, nil
}
