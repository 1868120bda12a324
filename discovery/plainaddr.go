package discovery

import (
	"net/netip"
	"strconv"
	"strings"
)

// PlainAddr reports whether s is a multiaddr of the plain shape nearly
// every peer announces, /ip4/A/tcp/P, /ip6/A/udp/P or either with
// /quic-v1 after, and returns its IP. It parses without building a
// multiaddr; anything it does not accept (another shape, or no multiaddr
// at all) is for the multiaddr parser to judge. Whatever it accepts, the
// multiaddr parser accepts too, with the same IP (FuzzPlainAddr).
func PlainAddr(s string) (netip.Addr, bool) {
	rest, ok := strings.CutPrefix(s, "/ip")
	if !ok || len(rest) < 2 || rest[1] != '/' {
		return netip.Addr{}, false
	}
	v6 := rest[0] == '6'
	if !v6 && rest[0] != '4' {
		return netip.Addr{}, false
	}
	ipText, rest, ok := strings.Cut(rest[2:], "/")
	if !ok {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(ipText)
	// Only what the multiaddr parser takes: an IPv4 in dotted form for
	// ip4, any IPv6 without a zone for ip6.
	if err != nil || (v6 != ip.Is6()) || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	if rest, ok = strings.CutPrefix(rest, "tcp/"); !ok {
		if rest, ok = strings.CutPrefix(rest, "udp/"); !ok {
			return netip.Addr{}, false
		}
		rest = strings.TrimSuffix(rest, "/quic-v1")
	}
	if _, err := strconv.ParseUint(rest, 10, 16); err != nil {
		return netip.Addr{}, false
	}
	return ip, true
}
