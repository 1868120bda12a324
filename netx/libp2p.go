package netx

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	msmux "github.com/multiformats/go-multistream"
)

// Default connection-manager watermarks: libp2p's own, far above what one
// swarm keeps (its choker caps peers itself), so the manager only trims
// connections a peer no longer uses.
const (
	DefaultConnLow  = 160
	DefaultConnHigh = 192
)

// DefaultListenAddrs are loopback-only, so a host started without
// configuration never exposes itself to the network.
var DefaultListenAddrs = []string{
	"/ip4/127.0.0.1/tcp/0",
	"/ip4/127.0.0.1/udp/0/quic-v1",
}

// Libp2pConfig configures NewLibp2pHost. The zero value is a loopback host
// with an ephemeral identity.
type Libp2pConfig struct {
	// ListenAddrs are the multiaddrs to listen on (TCP and/or QUIC v1).
	// Empty means DefaultListenAddrs.
	ListenAddrs []string
	// StateDir holds the identity key (peer.key, created 0600 if missing)
	// so the peer keeps its ID across restarts. Empty means a fresh
	// ephemeral identity.
	StateDir string
	// Key, if set, is the identity and StateDir is not consulted.
	Key crypto.PrivKey
	// ConnLow and ConnHigh are the connection manager's watermarks: above
	// ConnHigh connections it trims down to ConnLow. Zero means
	// DefaultConnLow / DefaultConnHigh.
	ConnLow, ConnHigh int
	// Identity picks the identity kept in StateDir: IdentityFixed (the
	// default, peer.key) or IdentityDaily (a key per UTC day derived from
	// identity.seed). Ignored when Key is set.
	Identity Identity
	// DSCP marks the host's P2P sockets (TCP and QUIC, both directions)
	// with a DSCP value; 0 or DSCPOff leaves them unmarked.
	DSCP DSCP
	// NATPortMap asks the gateway (UPnP/NAT-PMP) to forward our ports. Off by
	// default: it probes the LAN and keeps goroutines running.
	NATPortMap bool
	// Relays are circuit relay v2 nodes (multiaddrs ending in /p2p/ID, as
	// shoal relay prints them). With any, the host reserves a slot on them
	// and, while it is not known to be reachable, offers its relay circuit
	// addresses. Empty: relaying is off.
	Relays []string
	// AutoNAT asks other hosts (relays and peers) to dial our addresses
	// back, so only addresses confirmed reachable are offered without a
	// relay circuit; the host answers such requests too (AutoNAT v2).
	AutoNAT bool
	// HolePunching upgrades a relayed connection to a direct one when both
	// sides' NATs allow it (DCUtR).
	HolePunching bool
	// Private is relay-only mode: the host listens on no address, connects
	// directly only to its Relays, reaches and is reached by every other
	// peer through a relay circuit, and offers only circuit addresses; no
	// hole punching. Needs at least one relay.
	Private bool
}

// libp2pHost adapts a libp2p host to Host.
type libp2pHost struct {
	h       host.Host
	punches *punchLog
	rsv     *reserver // nil without relays

	mu     sync.Mutex // guards closed
	closed bool
}

var _ Host = (*libp2pHost)(nil)

// NewLibp2pHost starts a libp2p host with TCP and QUIC transports, always
// encrypted (TLS 1.3 or Noise, negotiated) and multiplexed with yamux.
// Relay, AutoNAT, hole punching and NAT port mapping are off unless cfg asks
// for them, and metrics are off, to keep idle hosts light; the resource
// manager keeps libp2p's autoscaled defaults.
func NewLibp2pHost(ctx context.Context, cfg Libp2pConfig) (Host, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	key, err := stateKey(cfg)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	listen := cfg.ListenAddrs
	if len(listen) == 0 {
		listen = DefaultListenAddrs
	}
	if _, err := ParseAddrs(listen); err != nil {
		return nil, fmt.Errorf("start libp2p host: listen %w", err)
	}
	low, high := cfg.ConnLow, cfg.ConnHigh
	if low <= 0 {
		low = DefaultConnLow
	}
	if high <= 0 {
		high = max(DefaultConnHigh, low)
	}
	if high < low {
		return nil, fmt.Errorf("start libp2p host: connection high watermark %d below low %d", high, low)
	}
	cm, err := connmgr.NewConnManager(low, high)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}

	var hp atomic.Pointer[libp2pHost] // for the DSCP dialer, once it exists
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(quic.NewTransport),
		libp2p.DefaultSecurity,
		libp2p.DefaultMuxers,
		libp2p.DisableMetrics(),
		libp2p.ConnectionManager(cm),
		libp2p.UserAgent("shoal"),
		libp2p.SwarmOpts(swarm.WithDialRanker(bulkRanker)),
	}
	if key != nil {
		opts = append(opts, libp2p.Identity(key))
	}
	punches := &punchLog{}
	nat, err := natOptions(cfg, punches)
	if err != nil {
		cm.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	opts = append(opts, nat...)
	if cfg.DSCP.marks() {
		opts = append(opts, dscpOptions(cfg.DSCP, &hp)...)
	} else {
		opts = append(opts, libp2p.Transport(tcp.NewTCPTransport))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		cm.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	lh := &libp2pHost{h: h, punches: punches}
	hp.Store(lh)
	if cfg.DSCP.marks() {
		if err := markListeners(cfg.DSCP, h.Network().ListenAddresses()); err != nil {
			h.Close()
			return nil, fmt.Errorf("start libp2p host: mark listening sockets with DSCP %v: %w", cfg.DSCP, err)
		}
	}
	if len(cfg.Relays) > 0 {
		relays, _ := ParseRelays(cfg.Relays) // natOptions checked them
		lh.rsv = startReserver(h, relays)
	}
	return lh, nil
}

// stateKey is the identity cfg asks for: its Key, the state dir's fixed
// key or today's daily key, or nil (an ephemeral one).
func stateKey(cfg Libp2pConfig) (crypto.PrivKey, error) {
	if cfg.Key != nil {
		return cfg.Key, nil
	}
	mode, err := ParseIdentity(string(cfg.Identity))
	if err != nil {
		return nil, err
	}
	switch {
	case mode == IdentityDaily && cfg.StateDir == "":
		return nil, fmt.Errorf("identity daily needs a state directory to keep its seed in")
	case mode == IdentityDaily:
		seed, err := LoadOrCreateSeed(filepath.Join(cfg.StateDir, SeedFileName))
		if err != nil {
			return nil, err
		}
		return DailyKey(seed, Day(time.Now()))
	case cfg.StateDir != "":
		return LoadOrCreateKey(filepath.Join(cfg.StateDir, KeyFileName))
	}
	return nil, nil
}

func (h *libp2pHost) ID() PeerID { return PeerID(h.h.ID().String()) }

// Sign signs msg with the host's identity key: a tracker checks with it that
// an announce speaks for this peer ID (the ID embeds the public key).
func (h *libp2pHost) Sign(msg []byte) ([]byte, error) {
	k := h.h.Peerstore().PrivKey(h.h.ID())
	if k == nil {
		return nil, fmt.Errorf("sign as %s: the host holds no private key", h.h.ID())
	}
	return k.Sign(msg)
}

// Addrs are the addresses others should dial: the host's direct ones
// (listen, observed and mapped), less those AutoNAT found unreachable, and
// then, unless AutoNAT confirmed one reachable, the circuits of the relay
// slots the host holds.
func (h *libp2pHost) Addrs() []string {
	var reachable, unreachable []ma.Multiaddr
	if c, ok := h.h.(interface {
		ConfirmedAddrs() (reachable, unreachable, unknown []ma.Multiaddr)
	}); ok {
		reachable, unreachable, _ = c.ConfirmedAddrs()
	}
	addrs := h.h.Addrs()
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if !isCircuit(a) && !slices.ContainsFunc(unreachable, a.Equal) {
			out = append(out, a.String())
		}
	}
	if h.rsv != nil && len(reachable) == 0 {
		out = append(out, h.rsv.addrs()...)
	}
	return out
}

func (h *libp2pHost) NewStream(ctx context.Context, p PeerID, addrs []string, proto string) (Stream, error) {
	fail := func(err error) (Stream, error) {
		return nil, fmt.Errorf("stream %s to %s: %w", proto, p.Short(), err)
	}
	if h.isClosed() {
		return fail(ErrHostClosed)
	}
	pid, err := peer.Decode(string(p))
	if err != nil {
		return fail(fmt.Errorf("%w: bad peer ID: %w", ErrUnknownPeer, err))
	}
	// A relayed connection is limited in time and bytes, yet for a peer
	// behind a NAT it may be all there is. The swarm dials direct addresses
	// before circuits and picks a direct connection (dialled or
	// hole-punched) over a relayed one whenever it has both, so a relayed
	// connection carries streams only while nothing better exists.
	ctx = network.WithAllowLimitedConn(ctx, "shoal")
	if len(addrs) > 0 {
		mas, err := ParseAddrs(addrs)
		if err != nil {
			return fail(err)
		}
		// Connect is a no-op when already connected; otherwise it records
		// the addresses (temporarily) and dials them.
		if err := h.h.Connect(ctx, peer.AddrInfo{ID: pid, Addrs: mas}); err != nil {
			return fail(h.classify(err))
		}
	}
	s, err := h.h.NewStream(ctx, pid, protocol.ID(proto))
	if err != nil {
		return fail(h.classify(err))
	}
	return &libp2pStream{s: s}, nil
}

// classify maps libp2p's errors onto ours, keeping the original in the chain.
func (h *libp2pHost) classify(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case h.isClosed(), errors.Is(err, swarm.ErrSwarmClosed):
		return fmt.Errorf("%w: %w", ErrHostClosed, err)
	case errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}):
		return fmt.Errorf("%w: %w", ErrNoProtocol, err)
	case errors.Is(err, network.ErrReset):
		return fmt.Errorf("%w: %w", ErrStreamReset, err)
	default:
		return fmt.Errorf("%w: %w", ErrUnknownPeer, err)
	}
}

func (h *libp2pHost) SetStreamHandler(proto string, fn func(Stream)) {
	if fn == nil {
		h.h.RemoveStreamHandler(protocol.ID(proto))
		return
	}
	h.h.SetStreamHandler(protocol.ID(proto), func(s network.Stream) {
		fn(&libp2pStream{s: s})
	})
}

func (h *libp2pHost) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

func (h *libp2pHost) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	if h.rsv != nil {
		h.rsv.close()
	}
	if err := h.h.Close(); err != nil {
		return fmt.Errorf("close libp2p host %s: %w", h.ID().Short(), err)
	}
	return nil
}

// libp2pStream adapts network.Stream, translating reset errors so callers
// check errors.Is(err, ErrStreamReset) on every Host implementation.
type libp2pStream struct {
	s network.Stream
}

var _ Stream = (*libp2pStream)(nil)

func (s *libp2pStream) Read(b []byte) (int, error) {
	n, err := s.s.Read(b)
	return n, streamErr(err)
}

func (s *libp2pStream) Write(b []byte) (int, error) {
	n, err := s.s.Write(b)
	return n, streamErr(err)
}

func (s *libp2pStream) Close() error       { return streamErr(s.s.Close()) }
func (s *libp2pStream) CloseWrite() error  { return streamErr(s.s.CloseWrite()) }
func (s *libp2pStream) Reset() error       { return s.s.Reset() }
func (s *libp2pStream) RemotePeer() PeerID { return PeerID(s.s.Conn().RemotePeer().String()) }

func streamErr(err error) error {
	if err != nil && errors.Is(err, network.ErrReset) {
		return fmt.Errorf("%w: %w", ErrStreamReset, err)
	}
	return err
}
