package netx

import (
	"cmp"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// How long a dial waits for TCP before QUIC is tried as well, as libp2p's
// own ranking waits before TCP: one round trip on a local network, a
// happy-eyeballs interval (RFC 8305) on the internet.
const (
	quicAfterTCPPrivate = swarm.PrivateTCPDelay
	quicAfterTCPPublic  = swarm.PublicTCPDelay
)

// bulkRanker is the dial ranking of Shoal's hosts: libp2p's default
// (swarm.DefaultDialRanker) with TCP and QUIC swapped, so a peer that
// listens on both is reached over TCP, and over QUIC only when TCP has not
// connected within quicAfterTCP*. A swarm moves bulk data: over TCP the
// kernel segments, acknowledges and paces it, where QUIC does all of that
// per packet in user space. On the netbed (ten receivers on two cores) the
// peers used about half the CPU over TCP that they used over QUIC, and
// their links carried slightly less overhead per payload byte. Relay
// circuits keep libp2p's ranking and stay behind the direct addresses; a
// hole punch dials all its addresses at once whatever the ranking.
func bulkRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	var tcp, rest []ma.Multiaddr
	public := false
	for _, a := range addrs {
		if isDirectTCP(a) {
			tcp = append(tcp, a)
			public = public || !manet.IsPrivateAddr(a)
		} else {
			rest = append(rest, a)
		}
	}
	if len(tcp) == 0 || len(rest) == 0 {
		return swarm.DefaultDialRanker(addrs)
	}
	lead := quicAfterTCPPrivate
	if public {
		lead = quicAfterTCPPublic
	}
	out := swarm.DefaultDialRanker(tcp)
	for _, d := range swarm.DefaultDialRanker(rest) {
		d.Delay += lead
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b network.AddrDelay) int { return cmp.Compare(a.Delay, b.Delay) })
	return out
}

// isDirectTCP reports a TCP address that is not a relay circuit (and not
// a websocket, which a browser-facing listener may offer).
func isDirectTCP(a ma.Multiaddr) bool {
	if isCircuit(a) {
		return false
	}
	tcp := false
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_TCP:
			tcp = true
		case ma.P_WS, ma.P_WSS, ma.P_TLS:
			return false
		}
	}
	return tcp
}
