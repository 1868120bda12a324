package netx

import (
	"fmt"
	"net/netip"

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

// addrScope is how far an address reaches: what a peer can dial.
type addrScope int

const (
	scopeNone     addrScope = iota // unspecified, link-local, multicast, unparsable
	scopeLoopback                  // this machine
	scopePrivate                   // a private network (RFC 1918, ULA, carrier NAT)
	scopePublic                    // anything else with an IP; also in-process addresses
)

var carrierNAT = netip.MustParsePrefix("100.64.0.0/10")

// scopeOf is the scope of a multiaddr: of its first IP (for a relay
// circuit, the relay's).
func scopeOf(s string) addrScope {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return scopeNone
	}
	first, _ := ma.SplitFirst(m)
	if first == nil {
		return scopeNone
	}
	switch first.Protocol().Code {
	case ma.P_IP4, ma.P_IP6:
	case ma.P_MEMORY:
		return scopePublic // in-process: dials nothing on a network
	default:
		return scopeNone // host names: whoever dials resolves them; not taken second-hand
	}
	ip, ok := netip.AddrFromSlice(first.RawValue())
	if !ok {
		return scopeNone
	}
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), ip.IsUnspecified(), ip.IsLinkLocalUnicast(), ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return scopeNone
	case ip.IsLoopback():
		return scopeLoopback
	case ip.IsPrivate(), carrierNAT.Contains(ip):
		return scopePrivate
	}
	return scopePublic
}

// Reachable keeps the addresses, learnt second-hand (from gossip or peer
// exchange), that a host with the addresses own could sensibly dial: public
// ones always, private ones only when own has a private address too,
// loopback ones only when own has a loopback one; never unspecified,
// link-local or multicast ones, nor host names. Without it, whoever
// gossips an address makes every peer dial it: a LAN host, a port on the
// peers' own machine.
func Reachable(own, addrs []string) []string {
	var have [scopePublic + 1]bool
	for _, a := range own {
		have[scopeOf(a)] = true
	}
	out := addrs[:0:0]
	for _, a := range addrs {
		if sc := scopeOf(a); sc == scopePublic || sc != scopeNone && have[sc] {
			out = append(out, a)
		}
	}
	return out
}
