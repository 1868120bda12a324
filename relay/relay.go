// Package relay is the relay role (shoal relay): a public libp2p node that
// helps peers behind NATs and firewalls. It relays their connections (circuit
// relay v2, within per-peer limits of time and bytes) and dials their
// addresses back on request (AutoNAT), so they learn whether they are
// reachable; and it is a DHT server that peers bootstrap from. Only
// cmd/shoal imports it.
package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/shoal-cdn/shoal/discovery/dht"
	"github.com/shoal-cdn/shoal/netx"
)

// Config is the relay's configuration.
type Config struct {
	// Host is the relay's libp2p configuration: listen addresses, identity
	// and limits.
	Host netx.RelayConfig
	// Out gets the relay's full multiaddrs (with /p2p/ID), one a line, once
	// it listens: what peers pass as --relay. Nil: not printed.
	Out io.Writer
	// Metrics is the listen address (host:port) of the Prometheus /metrics
	// endpoint; empty: none.
	Metrics string
	// DHT configures the relay's DHT node, always in server mode: peers
	// that list the relay as a bootstrap node find each other's swarms
	// through it. Its Bootstrap names other relays to join.
	DHT dht.Config
	// Logger logs the relay's life; nil means slog.Default().
	Logger *slog.Logger
}

// Run serves until ctx ends, then closes the host.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	var srv *http.Server
	if cfg.Metrics != "" {
		reg := prometheus.NewRegistry()
		cfg.Host.Registerer = reg
		ln, err := net.Listen("tcp", cfg.Metrics)
		if err != nil {
			return fmt.Errorf("relay metrics listen %s: %w", cfg.Metrics, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		serveDone := make(chan struct{})
		go func() {
			defer close(serveDone)
			srv.Serve(ln)
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			<-serveDone
		}()
	}
	h, err := netx.NewRelayHost(ctx, cfg.Host)
	if err != nil {
		return err
	}
	defer h.Close()
	// The DHT in server mode on the relay's host, stopped before it closes.
	cfg.DHT.Server = true
	d, err := dht.New(ctx, h, cfg.DHT)
	if err != nil {
		return fmt.Errorf("relay DHT: %w", err)
	}
	addrs := FullAddrs(h)
	if cfg.Out != nil {
		for _, a := range addrs {
			fmt.Fprintln(cfg.Out, a)
		}
	}
	log.Info("relay up", "id", h.ID(), "addrs", addrs, "metrics", cfg.Metrics)
	<-ctx.Done()
	if err := d.Close(); err != nil {
		log.Warn("close relay DHT", "err", err)
	}
	if err := h.Close(); err != nil {
		return fmt.Errorf("close relay: %w", err)
	}
	return nil
}

// FullAddrs are h's listen addresses with its /p2p/ID.
func FullAddrs(h host.Host) []string {
	var out []string
	for _, a := range h.Addrs() {
		out = append(out, a.String()+"/p2p/"+h.ID().String())
	}
	return out
}
