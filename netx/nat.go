package netx

import (
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// ConnKind is how a connection to a remote peer was formed.
type ConnKind string

const (
	// ConnDirect is a connection one side dialled straight to the other.
	ConnDirect ConnKind = "direct"
	// ConnHolePunched is a direct connection made by a hole punch (DCUtR)
	// over a relayed one.
	ConnHolePunched ConnKind = "hole-punched"
	// ConnRelayed goes through a circuit relay: limited in time and bytes.
	ConnRelayed ConnKind = "relayed"
)

// benchRange is the range set aside for benchmark networks; the NAT lab's
// hosts live in it.
var benchRange = net.IPNet{IP: net.IPv4(198, 18, 0, 0).To4(), Mask: net.CIDRMask(15, 32)}

var labOnce sync.Once

// UseLabNetwork makes this process treat the benchmark range 198.18.0.0/15
// as internet addresses, and confirm an observed external address after one
// observer instead of four. Shoal's NAT lab runs in that range (tests may use
// no other); libp2p counts it as unroutable, so without this AutoNAT, hole
// punching and relay reservations would ignore every address in the lab.
// Call it before starting any host; it cannot be undone. Never needed on a
// real network.
func UseLabNetwork() {
	labOnce.Do(func() {
		manet.Unroutable4 = slices.DeleteFunc(slices.Clone(manet.Unroutable4), func(n *net.IPNet) bool {
			return n.IP.Equal(benchRange.IP) && n.Mask.String() == benchRange.Mask.String()
		})
		observedaddrs.ActivationThresh = 1
	})
}

// ParseRelays parses relay multiaddrs, each ending in /p2p/ID, grouped by
// relay.
func ParseRelays(addrs []string) ([]peer.AddrInfo, error) {
	var mas []ma.Multiaddr
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("relay %q: %w", s, err)
		}
		if _, err := m.ValueForProtocol(ma.P_P2P); err != nil {
			return nil, fmt.Errorf("relay %q: want a multiaddr ending in /p2p/PEER_ID (shoal relay prints its own)", s)
		}
		mas = append(mas, m)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("relays: %w", err)
	}
	return infos, nil
}

// isCircuit reports whether a goes through a relay.
func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// natOptions are the libp2p options of cfg's connectivity: relay client,
// AutoNAT, hole punching, port mapping and relay-only (private) mode.
func natOptions(cfg Libp2pConfig, hp *punchLog) ([]libp2p.Option, error) {
	relays, err := ParseRelays(cfg.Relays)
	if err != nil {
		return nil, err
	}
	if cfg.Private && len(relays) == 0 {
		return nil, fmt.Errorf("private mode: want at least one relay (it is the only way in or out)")
	}
	var opts []libp2p.Option
	if len(relays) > 0 {
		// The relay client transport; the reserver (see startReserver)
		// holds the slots.
		opts = append(opts, libp2p.EnableRelay())
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	if cfg.Private {
		ids := map[peer.ID]bool{}
		for _, r := range relays {
			ids[r.ID] = true
		}
		opts = append(opts,
			libp2p.NoListenAddrs,
			libp2p.ConnectionGater(relayOnlyGater{relays: ids}),
			// Nobody can dial it directly: its addresses are its relay
			// circuits alone.
			libp2p.ForceReachabilityPrivate(),
			libp2p.AddrsFactory(func(as []ma.Multiaddr) []ma.Multiaddr {
				return slices.DeleteFunc(as, func(a ma.Multiaddr) bool { return !isCircuit(a) })
			}),
		)
		return opts, nil
	}
	if cfg.AutoNAT {
		opts = append(opts, libp2p.EnableAutoNATv2())
	}
	if cfg.HolePunching {
		opts = append(opts, libp2p.EnableHolePunching(holepunch.WithTracer(hp)))
	}
	if cfg.NATPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	return opts, nil
}

// relayOnlyGater lets a private host connect to its relays and nothing else
// directly: every other connection, in or out, must be a relay circuit, so no
// other peer ever learns its IP address.
type relayOnlyGater struct {
	relays map[peer.ID]bool
}

func (g relayOnlyGater) InterceptPeerDial(peer.ID) bool { return true }

func (g relayOnlyGater) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	return g.relays[p] || isCircuit(a)
}

func (g relayOnlyGater) InterceptAccept(cm network.ConnMultiaddrs) bool {
	return isCircuit(cm.RemoteMultiaddr())
}

func (g relayOnlyGater) InterceptSecured(dir network.Direction, p peer.ID, cm network.ConnMultiaddrs) bool {
	return g.relays[p] || isCircuit(cm.RemoteMultiaddr())
}

func (g relayOnlyGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// punchLog remembers the peers a hole punch reached, so a direct connection
// to them is reported as hole-punched. Bounded: it forgets the oldest past
// maxPunched.
type punchLog struct {
	mu    sync.Mutex // guards peers and order
	peers map[peer.ID]bool
	order []peer.ID
}

const maxPunched = 4096

var _ holepunch.EventTracer = (*punchLog)(nil)

func (l *punchLog) Trace(evt *holepunch.Event) {
	if evt.Type != holepunch.EndHolePunchEvtT {
		return
	}
	if e, ok := evt.Evt.(*holepunch.EndHolePunchEvt); !ok || !e.Success {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.peers == nil {
		l.peers = map[peer.ID]bool{}
	}
	if l.peers[evt.Remote] {
		return
	}
	if len(l.order) >= maxPunched {
		delete(l.peers, l.order[0])
		l.order = l.order[1:]
	}
	l.peers[evt.Remote] = true
	l.order = append(l.order, evt.Remote)
}

func (l *punchLog) punched(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peers[p]
}

// ConnKinds reports, for each peer h is connected to, how the best
// connection to it was formed. It is empty for hosts without libp2p.
func ConnKinds(h Host) map[PeerID]ConnKind {
	lh := asLibp2pHost(h)
	out := map[PeerID]ConnKind{}
	if lh == nil {
		return out
	}
	for _, c := range lh.h.Network().Conns() {
		p := c.RemotePeer()
		kind := ConnDirect
		switch {
		case c.Stat().Limited || isCircuit(c.RemoteMultiaddr()):
			kind = ConnRelayed
		case lh.punches.punched(p):
			kind = ConnHolePunched
		}
		if prev, ok := out[PeerID(p.String())]; ok && prev != ConnRelayed {
			continue // a direct connection beats a relayed one
		}
		out[PeerID(p.String())] = kind
	}
	return out
}

// asLibp2pHost is the *libp2pHost behind h, seeing through wrappers.
func asLibp2pHost(h Host) *libp2pHost {
	switch v := h.(type) {
	case *libp2pHost:
		return v
	case Unwrapper:
		return asLibp2pHost(v.Unwrap())
	}
	return nil
}
