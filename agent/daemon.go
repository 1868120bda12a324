package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/shoal-cdn/shoal/health"
)

// DaemonConfig is `shoal peer`: a Peer plus its local HTTP gateway.
type DaemonConfig struct {
	PeerConfig
	Gateway string // gateway listen address; default 127.0.0.1:7171
}

// The gateway server's own bounds: a client that sends its request headers
// slowly, or keeps an idle connection open, is dropped.
const (
	gatewayReadHeaderTimeout = 10 * time.Second
	gatewayIdleTimeout       = 2 * time.Minute
	gatewayMaxHeaderBytes    = 64 << 10
)

// RunDaemon runs the peer daemon until ctx ends: it re-joins the swarms of
// what its cache holds, serves the gateway with /healthz and /readyz in
// front of it, and shuts down cleanly.
func RunDaemon(ctx context.Context, cfg DaemonConfig) error {
	if cfg.Gateway == "" {
		cfg.Gateway = "127.0.0.1:7171"
	}
	ln, err := net.Listen("tcp", cfg.Gateway)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p, err := NewPeer(pctx, cfg.PeerConfig)
	if err != nil {
		ln.Close()
		return err
	}
	// A get on the same cache goes through this gateway (see via.go).
	unannounce, err := announceDaemon(p.cache.dir, gatewayURL(ln.Addr()))
	if err != nil {
		ln.Close()
		cancel()
		p.Close()
		return err
	}
	defer unannounce()
	n := p.SeedCached(pctx)
	p.log.Info("peer up", "id", p.ID(), "addrs", p.Addrs(), "gateway", "http://"+ln.Addr().String(), "seeding", n)
	// No ReadTimeout or WriteTimeout: either would cut a long download
	// (and a read deadline cancels the request's context). A stalled
	// reader is cut by the gateway's per-write deadline instead
	// (GatewayLimits.StallTimeout).
	var draining atomic.Bool
	srv := &http.Server{
		Handler:           health.Route(p.readiness(&draining), p.Gateway()),
		ReadHeaderTimeout: gatewayReadHeaderTimeout,
		IdleTimeout:       gatewayIdleTimeout,
		MaxHeaderBytes:    gatewayMaxHeaderBytes,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	draining.Store(true)
	shCtx, shCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer shCancel()
	if serr := srv.Shutdown(shCtx); serr != nil {
		srv.Close()
	}
	cancel()
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	p.log.Info("peer stopped")
	return err
}

// readiness is the gateway's /readyz: the peer is ready while it is not
// shutting down, its libp2p host listens, and its cache stores chunks (after
// a failed write, a full disk, fetching pauses until a probe write
// succeeds). The tracker is not a condition: without it the peer still
// serves, from its cache, the peers it knows and the origin.
func (p *Peer) readiness(draining *atomic.Bool) *health.Checks {
	c := &health.Checks{}
	c.Add("peer", func() error {
		if draining.Load() {
			return errors.New("shutting down")
		}
		return nil
	})
	c.Add("p2p", func() error {
		if len(p.Addrs()) == 0 {
			return errors.New("libp2p host has no listen address")
		}
		return nil
	})
	c.Add("cache", func() error {
		if err := p.cache.chunks.WriteErr(); err != nil {
			return fmt.Errorf("not writable: %w", err)
		}
		return nil
	})
	return c
}
