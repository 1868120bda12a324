// Package dht is Shoal's distributed peer discovery: a Kademlia DHT
// (go-libp2p-kad-dht) on Shoal's own protocol (/shoal/kad/1.0.0, so it
// never joins another network's DHT) that holds provider records only: "peer
// P serves content C". A peer provides every content it holds or serves and
// looks the providers of a content up when it joins its swarm and while the
// swarm lacks peers, so a swarm forms without a tracker.
//
// It is an engine package beside the tracker client (package discovery): the
// peer daemon (agent) and `shoal relay` import it; it imports core, discovery,
// netx and libraries only.
//
// # Content to key
//
// A content ID is the SHA-256 of the signed manifest's bytes. Its DHT key is
// the CIDv1 with codec raw (0x55) and that digest as a sha2-256 multihash
// (code 0x12, length 32): CID(id) = cidv1(raw, mh(sha2-256, id)). Provider
// records are keyed by the multihash. Anyone who knows a content ID can thus
// compute its key, and no one learns a content ID from a key they did not
// already know to look up.
package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	kad "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

// ProtocolPrefix keeps Shoal's DHT apart from every other: its protocol is
// /shoal/kad/1.0.0.
const ProtocolPrefix = "/shoal"

// Defaults of Config.
const (
	DefaultMaxProviders      = 20
	DefaultLookupTimeout     = 30 * time.Second
	DefaultLookups           = 4
	DefaultLookupInterval    = 30 * time.Second
	DefaultReprovideInterval = 22 * time.Hour // the DHT keeps records 48 h
	DefaultWantPeers         = 8
	// connectRetryMax caps the back-off between attempts to reach the
	// bootstrap nodes while the routing table is empty.
	connectRetryMax = 30 * time.Second
	// retryMin is the first back-off of a lookup or provide that found no
	// DHT server to ask.
	retryMin = 500 * time.Millisecond
)

// Config configures a node of Shoal's DHT. The zero value is a client that
// knows no bootstrap node (it learns DHT servers only from peers that
// connect to it).
type Config struct {
	// Bootstrap are the multiaddrs, each ending in /p2p/PEERID, of DHT
	// servers to join through (relays, or peers run with Server).
	Bootstrap []string `yaml:"bootstrap"`
	// Server forces server mode: the node answers DHT queries and stores
	// provider records. Otherwise the mode follows the host's reachability
	// (ModeAuto): a server once it is known to be publicly reachable, a
	// client (queries and provides, serves nothing) before and behind NAT.
	Server bool `yaml:"server"`
	// PublicOnly keeps private and loopback addresses out of the routing
	// table, out of queries and out of our provider records. Off by
	// default: swarms inside one site (offices, a data centre) talk over
	// private addresses, and tests over loopback.
	PublicOnly bool `yaml:"public_only"`
	// MaxProviders bounds the providers one lookup returns (default
	// DefaultMaxProviders).
	MaxProviders int `yaml:"max_providers"`
	// LookupTimeout bounds one lookup or provide (default DefaultLookupTimeout).
	LookupTimeout time.Duration `yaml:"lookup_timeout"`
	// Lookups bounds the lookups and provides in flight at once, across
	// contents (default DefaultLookups).
	Lookups int `yaml:"lookups"`
	// LookupInterval is how often a swarm that lacks peers looks up its
	// providers again (default DefaultLookupInterval).
	LookupInterval time.Duration `yaml:"lookup_interval"`
	// ReprovideInterval is how often a provided content is provided again
	// (default DefaultReprovideInterval, within the records' 48 h life).
	ReprovideInterval time.Duration `yaml:"reprovide_interval"`
	// MaxRecords bounds the provider records the node stores for others
	// (default DefaultMaxRecords); beyond it new ones are refused.
	MaxRecords int          `yaml:"max_records"`
	Logger     *slog.Logger `yaml:"-"`
}

func (c *Config) fill() error {
	if c.MaxProviders <= 0 {
		c.MaxProviders = DefaultMaxProviders
	}
	if c.LookupTimeout <= 0 {
		c.LookupTimeout = DefaultLookupTimeout
	}
	if c.Lookups <= 0 {
		c.Lookups = DefaultLookups
	}
	if c.LookupInterval <= 0 {
		c.LookupInterval = DefaultLookupInterval
	}
	if c.ReprovideInterval <= 0 {
		c.ReprovideInterval = DefaultReprovideInterval
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// ErrBadBootstrap means a bootstrap address is not a multiaddr ending in
// /p2p/PEERID.
var ErrBadBootstrap = errors.New("bad DHT bootstrap address")

// ParseBootstrap parses bootstrap multiaddrs (each with /p2p/PEERID),
// merging addresses of the same peer.
func ParseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	idx := map[peer.ID]int{}
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrBadBootstrap, s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, fmt.Errorf("%w %q: want a multiaddr ending in /p2p/PEERID: %v", ErrBadBootstrap, s, err)
		}
		if i, ok := idx[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		idx[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, nil
}

// CID is the DHT key of a content (see the package comment).
func CID(id core.ContentID) cid.Cid {
	m, err := mh.Encode(id[:], mh.SHA2_256)
	if err != nil { // only for a digest of the wrong length; ours is 32 bytes
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, m)
}

// DHT is one node of Shoal's DHT on a libp2p host.
type DHT struct {
	cfg   Config
	h     host.Host
	kad   *kad.IpfsDHT
	boot  []peer.AddrInfo
	sem   chan struct{} // one token per lookup or provide in flight
	log   *slog.Logger
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	found atomic.Int64 // providers handed out by lookups
	provs atomic.Int64 // successful provides
}

// New starts a DHT node on h and begins joining through cfg.Bootstrap in
// the background. Close it before closing h.
func New(ctx context.Context, h host.Host, cfg Config) (*DHT, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	boot, err := ParseBootstrap(cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	mode := kad.ModeAuto
	if cfg.Server {
		mode = kad.ModeServer
	}
	opts := []kad.Option{
		kad.ProtocolPrefix(ProtocolPrefix),
		kad.Mode(mode),
		kad.BootstrapPeers(boot...),
		// Provider records only: no values, and none of the default
		// public-key and name-record validators.
		kad.DisableValues(),
		kad.Validator(record.NamespacedValidator{}),
		kad.Datastore(newBoundedStore(cfg.MaxRecords)),
	}
	if cfg.PublicOnly {
		opts = append(opts,
			kad.QueryFilter(kad.PublicQueryFilter),
			kad.RoutingTableFilter(kad.PublicRoutingTableFilter),
			kad.AddressFilter(publicAddrs))
	}
	k, err := kad.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	dctx, stop := context.WithCancel(ctx)
	d := &DHT{cfg: cfg, h: h, kad: k, boot: boot, sem: make(chan struct{}, cfg.Lookups), log: cfg.Logger, ctx: dctx, stop: stop}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.join()
	}()
	return d, nil
}

// publicAddrs drops private, loopback and other unroutable addresses.
func publicAddrs(as []ma.Multiaddr) []ma.Multiaddr {
	out := as[:0:0]
	for _, a := range as {
		if manet.IsPublicAddr(a) {
			out = append(out, a)
		}
	}
	return out
}

// join dials the bootstrap nodes until the routing table holds a server,
// backing off (with jitter, up to connectRetryMax) between rounds, then
// refreshes the table once. Later the DHT keeps its table filled itself.
func (d *DHT) join() {
	if len(d.boot) == 0 {
		return
	}
	wait := retryMin
	for d.kad.RoutingTable().Size() == 0 {
		for _, ai := range d.boot {
			if ai.ID == d.h.ID() {
				continue
			}
			cctx, cancel := context.WithTimeout(d.ctx, d.cfg.LookupTimeout)
			if err := d.h.Connect(cctx, ai); err != nil && d.ctx.Err() == nil {
				d.log.Debug("DHT bootstrap node unreachable", "peer", ai.ID, "err", err)
			}
			cancel()
		}
		// Identify tells the DHT a server's protocols just after the
		// connection: give it a moment before dialling again.
		if !sleep(d.ctx, jitter(wait)) {
			return
		}
		wait = min(2*wait, connectRetryMax)
	}
	if err := d.kad.Bootstrap(d.ctx); err != nil && d.ctx.Err() == nil {
		d.log.Debug("DHT refresh", "err", err)
	}
}

// Provide announces that this node serves id, now (retrying with back-off
// until a DHT server takes the record) and every ReprovideInterval, until
// ctx ends. It returns at once.
func (d *DHT) Provide(ctx context.Context, id core.ContentID) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ctx, cancel := mergeCtx(ctx, d.ctx)
		defer cancel()
		key := CID(id)
		wait := retryMin
		for {
			err := d.limited(ctx, func(lctx context.Context) error {
				if d.kad.RoutingTable().Size() == 0 {
					// A server answers for itself meanwhile: nodes that
					// reach it find it as a provider.
					if d.kad.Mode() == kad.ModeServer {
						if err := d.kad.Provide(lctx, key, false); err != nil {
							return err
						}
					}
					return errNoServers
				}
				return d.kad.Provide(lctx, key, true)
			})
			next := d.cfg.ReprovideInterval
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				d.log.Debug("DHT provide", "content", id.Short(), "err", err)
				next, wait = wait, min(2*wait, d.cfg.LookupInterval)
			} else {
				d.provs.Add(1)
				wait = retryMin
			}
			if !sleep(ctx, jitter(next)) {
				return
			}
		}
	}()
}

var errNoServers = errors.New("no DHT server known yet")

// FindPeers looks up the providers of id at once, then again every
// LookupInterval while want reports that the swarm lacks peers (sooner,
// backing off from half a second, while lookups find no DHT server or no
// provider), handing each provider other than ourselves to found. It
// returns when ctx ends. found must not block for long.
func (d *DHT) FindPeers(ctx context.Context, id core.ContentID, want func() bool, found func(discovery.PeerInfo)) {
	ctx, cancel := mergeCtx(ctx, d.ctx)
	defer cancel()
	key := CID(id)
	wait := retryMin
	for {
		n := 0
		if want == nil || want() {
			err := d.limited(ctx, func(lctx context.Context) error {
				if d.kad.RoutingTable().Size() == 0 {
					return errNoServers
				}
				for ai := range d.kad.FindProvidersAsync(lctx, key, d.cfg.MaxProviders) {
					if ai.ID == d.h.ID() {
						continue
					}
					n++
					d.found.Add(1)
					addrs := make([]string, len(ai.Addrs))
					for i, a := range ai.Addrs {
						addrs[i] = a.String()
					}
					found(discovery.PeerInfo{Peer: ai.ID.String(), Addrs: addrs})
				}
				return nil
			})
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				d.log.Debug("DHT lookup", "content", id.Short(), "err", err)
			}
		}
		next := d.cfg.LookupInterval
		if n == 0 {
			next, wait = wait, min(2*wait, d.cfg.LookupInterval)
		} else {
			wait = retryMin
		}
		if !sleep(ctx, jitter(next)) {
			return
		}
	}
}

// limited runs fn with a lookup slot and LookupTimeout.
func (d *DHT) limited(ctx context.Context, fn func(context.Context) error) error {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.sem }()
	lctx, cancel := context.WithTimeout(ctx, d.cfg.LookupTimeout)
	defer cancel()
	return fn(lctx)
}

// Stats is what the node reports on /api/status and /metrics.
type Stats struct {
	Mode         string `json:"mode"`          // "server" or "client"
	RoutingTable int    `json:"routing_table"` // DHT servers known
	Provided     int64  `json:"provided"`      // successful provides (re-provides count again)
	Found        int64  `json:"found"`         // providers found by lookups
}

// Stats reports the node's mode, routing table and counters.
func (d *DHT) Stats() Stats {
	mode := "client"
	if d.kad.Mode() == kad.ModeServer {
		mode = "server"
	}
	return Stats{Mode: mode, RoutingTable: d.kad.RoutingTable().Size(), Provided: d.provs.Load(), Found: d.found.Load()}
}

// Close stops the node's loops and the DHT (not the host).
func (d *DHT) Close() error {
	d.stop()
	d.wg.Wait()
	return d.kad.Close()
}

// RunBootstrap runs a DHT server on h until ctx ends: the node other nodes
// join through (cfg.Server is implied). `shoal relay` runs one, and so does
// `shoal peer --dht-server`.
func RunBootstrap(ctx context.Context, h host.Host, cfg Config) error {
	cfg.Server = true
	d, err := New(ctx, h, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return d.Close()
}

// mergeCtx is a context that ends when either ends.
func mergeCtx(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}

// jitter spreads d over ±10 %, so many peers do not act in lock-step.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()-0.5)*0.2*float64(d))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
