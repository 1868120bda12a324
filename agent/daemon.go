package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
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
// what its cache holds, serves the gateway, and shuts down cleanly.
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
	srv := &http.Server{
		Handler:           p.Gateway(),
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
