package netx

import (
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Libp2p returns the libp2p host behind h, for protocols that need libp2p
// itself rather than plain streams (GossipSub). It sees through Shape. ok is
// false for hosts without one, such as a MemNetwork's: callers then do
// without those protocols. It sees through any wrapper that implements
// Unwrapper (Shape's among them).
func Libp2p(h Host) (lh host.Host, ok bool) {
	switch v := h.(type) {
	case *libp2pHost:
		return v.h, true
	case Unwrapper:
		return Libp2p(v.Unwrap())
	}
	return nil, false
}

// Unwrapper is a Host that wraps another (to shape or count its streams):
// Unwrap returns the wrapped host.
type Unwrapper interface {
	Unwrap() Host
}

// PeerAddrs returns the addresses h knows to dial p at: for a libp2p host,
// those in its peer store (the listen addresses p announced over identify,
// and the ones it was dialled at); for a MemNetwork's host, p's pseudo-
// address while p is on the network. nil when it knows none.
func PeerAddrs(h Host, p PeerID) []string {
	switch v := h.(type) {
	case *libp2pHost:
		pid, err := peer.Decode(string(p))
		if err != nil {
			return nil
		}
		var out []string
		for _, a := range v.h.Peerstore().Addrs(pid) {
			out = append(out, a.String())
		}
		return out
	case *memHost:
		if o := v.net.lookup(p); o != nil {
			return o.Addrs()
		}
		return nil
	case Unwrapper:
		return PeerAddrs(v.Unwrap(), p)
	}
	return nil
}
