package tracker

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-cdn/shoal/discovery"
)

// addrKind is what an address is to the peers the tracker hands it to.
type addrKind int

const (
	kindBad      addrKind = iota // unspecified, link-local, multicast: never handed out
	kindLoopback                 // only for peers on the same loopback
	kindPrivate                  // only for peers in the same private network or behind the same NAT
	kindPublic
)

var cgnat = netip.MustParsePrefix("100.64.0.0/10") // shared address space: private to a carrier's NAT

func classify(ip netip.Addr) addrKind {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), ip.IsUnspecified(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(),
		ip.IsInterfaceLocalMulticast(), ip.IsMulticast(), ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return kindBad
	case ip.IsLoopback():
		return kindLoopback
	case ip.IsPrivate(), cgnat.Contains(ip):
		return kindPrivate
	}
	return kindPublic
}

// local reports whether ip is loopback or private: a peer the tracker sees
// from inside its own network.
func local(ip netip.Addr) bool {
	k := classify(ip)
	return k == kindLoopback || k == kindPrivate
}

// peerAddrs are the announced addresses the tracker kept, by kind, with the
// address the announce came from.
type peerAddrs struct {
	public   []string
	private  []string
	loopback []string
	observed netip.Addr
}

// droppedAddr is an announced address the tracker refused to hand out.
type droppedAddr struct {
	addr, reason string
	foreign      bool // a routable host other than the announcer: a possible reflection attempt
}

// filterAddrs keeps the announced addresses other peers may dial, given the
// address observed the announce came from:
//   - never unspecified, link-local or multicast addresses, host names (the
//     tracker cannot check them);
//   - a relay circuit (…/p2p/RELAY/p2p-circuit) by its relay's address: any
//     public relay, a private one for peers of the same network, a loopback
//     one only on the tracker's loopback;
//   - loopback only from a peer on the tracker's loopback;
//   - a public address only if it is the observed one, so nobody can make
//     peers dial a third party;
//   - a private address only if it is the observed one when the announce
//     comes from a private network (the tracker sees the host), and from
//     behind a NAT (a public observed address) unchecked but handed only to
//     peers behind the same NAT (see visible).
func filterAddrs(announced []string, observed netip.Addr, relays RelaySet) (peerAddrs, []droppedAddr) {
	out := peerAddrs{observed: observed}
	var dropped []droppedAddr
	// A peer's addresses are nearly always of one kind: the first kept
	// address of a kind gets room for every address announced, one
	// allocation instead of one per append; what is left over is clipped
	// off at the end.
	keep := func(kind *[]string, s string) {
		if *kind == nil {
			*kind = make([]string, 0, len(announced))
		}
		*kind = append(*kind, s)
	}
	for _, s := range announced {
		// The plain shape nearly every peer announces is read without
		// building a multiaddr; any other goes through the parser.
		ip, plain := discovery.PlainAddr(s)
		ip = ip.Unmap()
		if !plain {
			if relayIP, relayID, ok := circuitRelay(s); ok {
				// A relay circuit: its host is the relay, not the peer, so
				// the relay's address cannot be checked against the
				// announcer's. Peers that get it dial the relay's address,
				// so only relays the operator listed are handed out (or one
				// on the tracker's own loopback): otherwise anyone could make
				// every asker dial a host of its choosing.
				switch k := classify(relayIP); {
				case !relayIP.IsValid():
					dropped = append(dropped, droppedAddr{addr: s, reason: "relay circuit whose relay is no IP address"})
				case k != kindLoopback && !relays[relayKey{relayIP, relayID}]:
					dropped = append(dropped, droppedAddr{addr: s, reason: "relay circuit through a relay the tracker does not list (--relays)", foreign: true})
				case k == kindBad:
					dropped = append(dropped, droppedAddr{addr: s, reason: "relay circuit through an unspecified, link-local or multicast address"})
				case k == kindLoopback && classify(observed) != kindLoopback:
					dropped = append(dropped, droppedAddr{addr: s, reason: "relay circuit through loopback, announced from " + observed.String()})
				case k == kindLoopback:
					keep(&out.loopback, s)
				case k == kindPrivate:
					keep(&out.private, s)
				default:
					keep(&out.public, s)
				}
				continue
			}
			var why string
			if ip, why = addrIP(s); why != "" {
				dropped = append(dropped, droppedAddr{addr: s, reason: why})
				continue
			}
			if !ip.IsValid() { // in-process
				keep(&out.public, s)
				continue
			}
		}
		switch classify(ip) {
		case kindBad:
			dropped = append(dropped, droppedAddr{addr: s, reason: "unspecified, link-local or multicast"})
		case kindLoopback:
			if classify(observed) != kindLoopback {
				dropped = append(dropped, droppedAddr{addr: s, reason: "loopback, announced from " + observed.String()})
				continue
			}
			keep(&out.loopback, s)
		case kindPrivate:
			if local(observed) && ip.Unmap() != observed.Unmap() {
				// Announced from inside a private network, where the
				// tracker sees the real host: as for a public address,
				// nobody may make its neighbours dial a third party.
				dropped = append(dropped, droppedAddr{addr: s, reason: "not the announcing host " + observed.String(), foreign: true})
				continue
			}
			keep(&out.private, s)
		case kindPublic:
			if ip.Unmap() != observed.Unmap() {
				dropped = append(dropped, droppedAddr{addr: s, reason: "not the announcing host " + observed.String(), foreign: true})
				continue
			}
			keep(&out.public, s)
		}
	}
	// The entry holds these for the peer's lifetime: no room to spare.
	out.public, out.private, out.loopback = slices.Clip(out.public), slices.Clip(out.private), slices.Clip(out.loopback)
	return out, dropped
}

// circuitRelayIP reports whether s is a relay circuit whose relay part
// names the relay (/p2p/ID), and returns the relay's IP (invalid if it has
// none).
func circuitRelay(s string) (netip.Addr, string, bool) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return netip.Addr{}, "", false
	}
	relayPart, _ := ma.SplitFunc(m, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT })
	if len(relayPart) == len(m) {
		return netip.Addr{}, "", false // no /p2p-circuit
	}
	ip, id, _ := relayOf(relayPart)
	return ip, id, true
}

// relayOf returns the IP and peer ID of a relay multiaddr
// (/ip4/…/…/p2p/ID); an invalid IP when it has no IP or no ID.
func relayOf(m ma.Multiaddr) (netip.Addr, string, error) {
	id, err := m.ValueForProtocol(ma.P_P2P)
	if err != nil {
		return netip.Addr{}, "", fmt.Errorf("%s names no relay peer ID (/p2p/…)", m)
	}
	first, _ := ma.SplitFirst(m)
	if first == nil || (first.Protocol().Code != ma.P_IP4 && first.Protocol().Code != ma.P_IP6) {
		return netip.Addr{}, "", fmt.Errorf("%s does not start with an IP address", m)
	}
	ip, ok := netip.AddrFromSlice(first.RawValue())
	if !ok {
		return netip.Addr{}, "", fmt.Errorf("%s: bad IP address", m)
	}
	return ip.Unmap(), id, nil
}

// relayKey names a relay by what peers dial: its IP and its peer ID.
type relayKey struct {
	ip netip.Addr
	id string
}

// RelaySet is the relays whose circuit addresses a tracker hands out.
type RelaySet map[relayKey]bool

// ParseRelays reads relay multiaddrs such as
// /ip4/203.0.113.7/tcp/4002/p2p/12D3KooW… (what shoal relay prints) into a
// RelaySet; every one must have an IP address and a peer ID.
func ParseRelays(list []string) (RelaySet, error) {
	set := RelaySet{}
	for _, s := range list {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("relay %q: %w", s, err)
		}
		ip, id, err := relayOf(m)
		if err != nil {
			return nil, fmt.Errorf("relay %q: %w", s, err)
		}
		set[relayKey{ip, id}] = true
	}
	return set, nil
}

// addrIP returns the IP a multiaddr dials, or why the tracker will not hand
// it out. An in-process address (/memory/…, simulations and tests) has no
// IP, dials nothing on a network, and is handed out as it is.
func addrIP(s string) (netip.Addr, string) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return netip.Addr{}, "not a multiaddr" // Validate already refused these
	}
	if _, err := m.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return netip.Addr{}, "relay circuit: its host is the relay, not the peer"
	}
	first, _ := ma.SplitFirst(m)
	if first == nil {
		return netip.Addr{}, "empty"
	}
	switch first.Protocol().Code {
	case ma.P_MEMORY:
		return netip.Addr{}, ""
	case ma.P_IP4, ma.P_IP6:
		ip, ok := netip.AddrFromSlice(first.RawValue())
		if !ok {
			return netip.Addr{}, "bad IP"
		}
		return ip.Unmap(), ""
	case ma.P_IP6ZONE:
		return netip.Addr{}, "zoned IPv6: link-local"
	}
	return netip.Addr{}, "host name or non-IP address: the tracker cannot check it"
}

// viewer is an asker's address as the visibility rules read it: classified
// once per sample, not once for every peer handed out.
type viewer struct {
	ip       netip.Addr
	local    bool // loopback or private (see local)
	loopback bool
}

func viewerOf(ip netip.Addr) viewer {
	k := classify(ip)
	return viewer{ip: ip, local: k == kindLoopback || k == kindPrivate, loopback: k == kindLoopback}
}

// visible returns the addresses of a a peer at asker may dial, appended to
// out. With out nil and one kind of address visible, as for nearly every
// peer, it returns that kind's slice itself, capped so that an append
// copies: announces replace a peer's slices, never change them, so sharing
// them costs no allocation per peer handed out.
func (a *peerAddrs) visible(asker netip.Addr, out []string) []string {
	return a.visibleTo(viewerOf(asker), out)
}

// privateTo reports whether a's private addresses are for v: the same host
// (behind the same NAT), or both inside the tracker's networks.
func (a *peerAddrs) privateTo(v viewer) bool {
	return len(a.private) > 0 && (v.ip == a.observed || v.local && local(a.observed))
}

func (a *peerAddrs) visibleTo(v viewer, out []string) []string {
	priv := a.privateTo(v)
	loop := v.loopback && len(a.loopback) > 0 // a.loopback read for loopback askers only
	if out == nil {
		switch {
		case !priv && !loop:
			return a.public[:len(a.public):len(a.public)]
		case len(a.public) == 0 && !loop:
			return a.private[:len(a.private):len(a.private)]
		case len(a.public) == 0 && !priv:
			return a.loopback[:len(a.loopback):len(a.loopback)]
		}
	}
	out = append(out, a.public...)
	if priv {
		out = append(out, a.private...)
	}
	if loop {
		out = append(out, a.loopback...)
	}
	return out
}

// publicOnlyTo reports whether visibleTo(v) is the public addresses alone,
// as for most askers.
func (a *peerAddrs) publicOnlyTo(v viewer) bool {
	return !a.privateTo(v) && !(v.loopback && len(a.loopback) > 0)
}

// anyVisible reports whether visible(asker) would return any address.
func (a *peerAddrs) anyVisible(asker netip.Addr) bool { return a.anyVisibleTo(viewerOf(asker)) }

func (a *peerAddrs) anyVisibleTo(v viewer) bool {
	return len(a.public) > 0 || a.privateTo(v) || len(a.loopback) > 0 && v.loopback
}

// prefixOf is the network a peer counts against for rate limits and
// diversity: its /24 (IPv4) or /48 (IPv6). A loopback address is its own
// network, so that the diversity cap can tell it (see group.capped).
func prefixOf(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 48
	switch {
	case ip.IsLoopback():
		bits = ip.BitLen()
	case ip.Is4():
		bits = 24
	}
	p, _ := ip.Prefix(bits)
	return p
}

// remoteIP is the client address of r: the TCP peer, or with trustForwarded
// the last X-Forwarded-For entry (the one the trusted proxy appended).
func remoteIP(r *http.Request, trustForwarded bool) (netip.Addr, error) {
	if trustForwarded {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			return forwardedIP(xff[len(xff)-1])
		}
	}
	return remoteAddrIP(r.RemoteAddr)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
