package netx

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/prometheus/client_golang/prometheus"
)

// Relay defaults: a slot per peer for an hour, and circuits long and large
// enough to carry a swarm's first chunks until a hole punch or a direct
// connection takes over.
const (
	DefaultRelayReservationTTL  = time.Hour
	DefaultRelayMaxReservations = 1024
	DefaultRelayMaxCircuits     = 16
	DefaultRelayCircuitBytes    = 64 << 20
	DefaultRelayCircuitDuration = 10 * time.Minute
)

// RelayConfig configures NewRelayHost. Zero fields take the defaults above.
type RelayConfig struct {
	// ListenAddrs are the public multiaddrs to listen on.
	ListenAddrs []string
	// StateDir holds the identity key, so peers' --relay addresses stay
	// valid across restarts. Empty: a fresh identity each start.
	StateDir string
	// Key, if set, is the identity and StateDir is not consulted.
	Key crypto.PrivKey
	// ReservationTTL is how long a peer's slot lasts before it renews it.
	ReservationTTL time.Duration
	// MaxReservations is the most peers holding a slot at once.
	MaxReservations int
	// MaxReservationsPerIP is the most slots one IP address may hold
	// (default 8).
	MaxReservationsPerIP int
	// MaxCircuits is the most relayed connections to or from one peer.
	MaxCircuits int
	// CircuitBytes is the most bytes one relayed connection carries in
	// each direction before the relay resets it.
	CircuitBytes int64
	// CircuitDuration is the longest a relayed connection lasts.
	CircuitDuration time.Duration
	// Registerer, if set, gets the host's and the relay service's metrics
	// (reservations, circuits, bytes relayed). Nil: none are kept.
	Registerer prometheus.Registerer
}

// NewRelayHost starts a public libp2p host that serves circuit relay v2
// within cfg's limits and answers AutoNAT (v1 and v2) dial-back requests.
// It counts itself publicly reachable: that is what a relay is for.
func NewRelayHost(ctx context.Context, cfg RelayConfig) (host.Host, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start relay: %w", err)
	}
	key := cfg.Key
	if key == nil && cfg.StateDir != "" {
		var err error
		if key, err = LoadOrCreateKey(filepath.Join(cfg.StateDir, KeyFileName)); err != nil {
			return nil, fmt.Errorf("start relay: %w", err)
		}
	}
	listen := cfg.ListenAddrs
	if len(listen) == 0 {
		listen = DefaultListenAddrs
	}
	if _, err := ParseAddrs(listen); err != nil {
		return nil, fmt.Errorf("start relay: listen %w", err)
	}
	rc := relayv2.DefaultResources()
	rc.ReservationTTL = orDefault(cfg.ReservationTTL, DefaultRelayReservationTTL)
	rc.MaxReservations = orDefault(cfg.MaxReservations, DefaultRelayMaxReservations)
	rc.MaxReservationsPerIP = orDefault(cfg.MaxReservationsPerIP, rc.MaxReservationsPerIP)
	rc.MaxCircuits = orDefault(cfg.MaxCircuits, DefaultRelayMaxCircuits)
	rc.Limit = &relayv2.RelayLimit{
		Data:     orDefault(cfg.CircuitBytes, DefaultRelayCircuitBytes),
		Duration: orDefault(cfg.CircuitDuration, DefaultRelayCircuitDuration),
	}
	cm, err := connmgr.NewConnManager(DefaultConnLow, max(DefaultConnHigh, rc.MaxReservations+DefaultConnLow))
	if err != nil {
		return nil, fmt.Errorf("start relay: %w", err)
	}
	relayOpts := []relayv2.Option{relayv2.WithResources(rc)}
	metrics := libp2p.DisableMetrics()
	if cfg.Registerer != nil {
		metrics = libp2p.PrometheusRegisterer(cfg.Registerer)
		relayOpts = append(relayOpts, relayv2.WithMetricsTracer(relayv2.NewMetricsTracer(relayv2.WithRegisterer(cfg.Registerer))))
	}
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.DefaultSecurity,
		libp2p.DefaultMuxers,
		metrics,
		libp2p.ConnectionManager(cm),
		libp2p.UserAgent("shoal-relay"),
		libp2p.ForceReachabilityPublic(),
		libp2p.EnableRelayService(relayOpts...),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
	}
	if key != nil {
		opts = append(opts, libp2p.Identity(key))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		cm.Close()
		return nil, fmt.Errorf("start relay: %w", err)
	}
	return h, nil
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
