package netx

import "github.com/libp2p/go-libp2p/core/host"

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
