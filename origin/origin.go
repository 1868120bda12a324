// Package origin is Shoal's HTTP origin role: it serves the static layout
// that `shoal publish` writes (see package layout) as plain files, with the
// caching, range and validator headers that fetchers, peers' fallback lane
// and any CDN in front of it rely on. Only cmd/shoal and whole-system harnesses
// (demo, benchmarks) should import it; nothing in the engines depends on it,
// because any static file server can stand in for it.
package origin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/shoal-cdn/shoal/accesslog"
	"github.com/shoal-cdn/shoal/health"
)

// DefaultListen is the listen address used when Config.Listen is empty.
const DefaultListen = "127.0.0.1:8080"

// shutdownTimeout bounds the graceful part of shutdown: in-flight transfers
// get this long to finish before connections are cut.
const shutdownTimeout = 5 * time.Second

// ErrBadConfig is wrapped by every configuration error New returns.
var ErrBadConfig = errors.New("origin: bad config")

// Config configures an origin server.
type Config struct {
	// Dir is the root of the layout to serve. Required; must be a directory.
	Dir string
	// Listen is the TCP address Run listens on; DefaultListen when empty.
	Listen string
	// UploadLimit caps response bytes per second across all responses
	// (one shared token bucket); 0 means unlimited. Benchmarks use it to
	// emulate an origin of a given capacity.
	UploadLimit float64
	// Logger receives startup and error logs; nil discards them.
	Logger *slog.Logger
	// AccessLog, when set, gets one line per request (probes excepted);
	// the caller opens and closes it.
	AccessLog *accesslog.Log
}

// Server serves one layout directory. Its counters are safe for concurrent use.
type Server struct {
	dir     string // absolute, so a later chdir cannot redirect it
	log     *slog.Logger
	limiter *rate.Limiter // nil when unlimited; shared by all responses
	chunk   int           // largest single write while limited
	metrics *metrics
	handler http.Handler
	gzip    gzipCache // compressed manifests
	ready   health.Checks
	// draining is set once shutdown begins, so /readyz turns away new
	// traffic while in-flight responses finish.
	draining atomic.Bool

	bytes    atomic.Int64
	requests atomic.Int64
	// updateRequests counts requests for live channels' latest updates.
	updateRequests atomic.Int64
}

// New validates cfg and returns a server for it.
func New(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: Dir is empty", ErrBadConfig)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("%w: Dir %q: %v", ErrBadConfig, cfg.Dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: Dir %q: %v", ErrBadConfig, cfg.Dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: Dir %q is not a directory", ErrBadConfig, cfg.Dir)
	}
	if cfg.UploadLimit < 0 || math.IsNaN(cfg.UploadLimit) || math.IsInf(cfg.UploadLimit, 0) {
		return nil, fmt.Errorf("%w: UploadLimit %v: want a finite rate ≥ 0 (0 = unlimited)", ErrBadConfig, cfg.UploadLimit)
	}
	s := &Server{dir: dir, log: cfg.Logger, metrics: newMetrics()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.UploadLimit > 0 {
		s.chunk = writeChunk(cfg.UploadLimit)
		s.limiter = rate.NewLimiter(rate.Limit(cfg.UploadLimit), s.chunk)
	}
	if cfg.AccessLog != nil {
		s.metrics.reg.MustRegister(cfg.AccessLog)
	}
	// Ready: not shutting down, and the layout directory still there (a
	// stat: an unmounted volume or a deleted layout shows here).
	s.ready.Add("origin", func() error {
		if s.draining.Load() {
			return errors.New("shutting down")
		}
		if _, err := os.Stat(s.dir); err != nil {
			return fmt.Errorf("layout directory: %w", err)
		}
		return nil
	})
	s.handler = health.Route(&s.ready, cfg.AccessLog.Wrap("origin", route(s.metrics.handler(), s.instrument(http.HandlerFunc(s.serveFile)))))
	return s, nil
}

// route sends exactly /metrics to metrics and everything else to files.
// Not a ServeMux: it would clean paths and redirect (`/a/../b` → `/b`),
// which hides traversal attempts instead of refusing them.
func route(metrics, files http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			metrics.ServeHTTP(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// Handler returns the file handler plus /metrics, /healthz and /readyz.
func (s *Server) Handler() http.Handler { return s.handler }

// BytesServed is the number of response body bytes written so far (origin
// egress), excluding /metrics.
func (s *Server) BytesServed() int64 { return s.bytes.Load() }

// Requests is the number of file requests handled so far, excluding /metrics.
func (s *Server) Requests() int64 { return s.requests.Load() }

// ChannelUpdateRequests is the number of requests for a live channel's
// latest update (followers' polls, 304s included) handled so far.
func (s *Server) ChannelUpdateRequests() int64 { return s.updateRequests.Load() }

// Serve serves on ln until ctx ends, then shuts down gracefully: in-flight
// responses get shutdownTimeout to finish. It returns nil on a clean
// shutdown. Serve closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// hardStop ends handlers still waiting for upload tokens once the
	// graceful period is over, so a throttled transfer cannot hold
	// shutdown hostage.
	hardCtx, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return hardCtx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("origin: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	shCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shCtx)
	if err != nil {
		hardStop()
		srv.Close()
	}
	<-errc // http.ErrServerClosed once Shutdown or Close has begun
	if err != nil {
		return fmt.Errorf("origin: graceful shutdown on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Run listens on cfg.Listen and serves cfg.Dir until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	addr := cfg.Listen
	if addr == "" {
		addr = DefaultListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("origin: listen on %s: %w", addr, err)
	}
	s.log.Info("origin listening", "addr", ln.Addr().String(), "dir", s.dir, "upload_limit_bytes_per_s", cfg.UploadLimit)
	return s.Serve(ctx, ln)
}
