//go:build !linux

package netx

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// dscpOptions: marking is implemented for Linux only; elsewhere sockets
// stay unmarked.
func dscpOptions(DSCP, *atomic.Pointer[libp2pHost]) []libp2p.Option {
	return []libp2p.Option{libp2p.Transport(tcp.NewTCPTransport)}
}

func markListeners(DSCP, []ma.Multiaddr) error { return nil }
