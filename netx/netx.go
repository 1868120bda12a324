// Package netx is Shoal's transport building block: the small Host and Stream
// interfaces the swarm session is written against, with three implementations
// behind them — real libp2p hosts (NewLibp2pHost), an in-process network for
// tests and the simulator (NewMemNetwork), and a link-rate emulator that wraps
// either (Shape).
//
// The engines (swarm, discovery) and roles import netx; netx imports only core
// packages of ours and never the engines, so the same session code runs over
// loopback libp2p, over dozens of in-memory peers in one test process, and
// over shaped links in `shoal bench`.
package netx

import (
	"context"
	"errors"
	"io"
)

// PeerID names a host. For libp2p hosts it is the peer.ID String() form
// (12D3Koo…); in a MemNetwork it is any unique string.
type PeerID string

// Short returns the last 12 characters of the ID, enough to tell peers apart
// in logs and error messages (libp2p IDs all share their first characters).
func (p PeerID) Short() string {
	const n = 12
	if len(p) <= n {
		return string(p)
	}
	return string(p[len(p)-n:])
}

// Stream is one full-duplex, ordered byte stream to a remote peer.
//
// Close ends both directions: the peer reads io.EOF once it has drained what
// was written. CloseWrite ends only our direction, so the peer sees io.EOF
// while we can still read its reply. Reset aborts both directions at once and
// makes pending and later reads and writes on both ends fail with an error
// that matches ErrStreamReset.
type Stream interface {
	io.Reader
	io.Writer
	io.Closer
	CloseWrite() error
	Reset() error
	RemotePeer() PeerID
}

// Host is one endpoint of the network: it dials streams to peers and accepts
// streams for the protocols it has handlers for.
type Host interface {
	ID() PeerID
	// Addrs returns the addresses others should dial, without the /p2p/ID
	// suffix (see FullAddrs for the form with it).
	Addrs() []string
	// NewStream opens a stream speaking proto to p, dialing addrs first if
	// there is no connection yet. addrs may be empty when the host already
	// knows how to reach p.
	NewStream(ctx context.Context, p PeerID, addrs []string, proto string) (Stream, error)
	// SetStreamHandler makes h the handler of inbound streams for proto. h
	// runs on its own goroutine per stream and owns the stream: it must Close
	// or Reset it. A nil h removes the handler.
	SetStreamHandler(proto string, h func(Stream))
	// Close stops accepting, resets every open stream and frees the host.
	Close() error
}

// Errors returned by every Host implementation, wrapped with detail; check
// them with errors.Is.
var (
	// ErrUnknownPeer means the peer cannot be reached: not on this network,
	// no usable address, or the dial failed.
	ErrUnknownPeer = errors.New("peer unreachable")
	// ErrHostClosed means the local or remote host has been closed.
	ErrHostClosed = errors.New("host closed")
	// ErrNoProtocol means the remote host has no handler for the protocol.
	ErrNoProtocol = errors.New("protocol not supported by peer")
	// ErrStreamReset means the stream was aborted by either end, by a
	// disconnect or by a host closing.
	ErrStreamReset = errors.New("stream reset")
	// ErrStreamClosed means a write after Close/CloseWrite or a read after
	// Close on the same end.
	ErrStreamClosed = errors.New("stream closed")
	// ErrBadAddr means an address string is not a usable multiaddr.
	ErrBadAddr = errors.New("bad address")
)
