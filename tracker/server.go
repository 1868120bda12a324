// Package tracker is the tracker role: the rendezvous where peers announce
// which content they hold or want and learn other peers of the same swarm,
// same region first. State is in memory; a restarted tracker refills within
// one announce interval.
//
// It serves POST /announce (the wire types live in package discovery),
// POST /report (report.go), GET /api/swarms and GET /metrics. Only cmd/shoal and the demo import it.
package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/discovery"
)

// shutdownTimeout bounds how long Serve waits for in-flight requests.
const shutdownTimeout = 5 * time.Second

// Server is a tracker. Its handler is safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
	m   *metrics
	mux *http.ServeMux

	mu sync.Mutex // guards st, including cfg.Rand which st uses
	st *state

	reports *reports // reports of proven offences (report.go); its own lock
}

// New returns a Server for cfg, with defaults filled in.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg: cfg,
		log: cfg.Logger.With("role", "tracker"),
		m:   newMetrics(),
		mux: http.NewServeMux(),
		st:  newState(cfg.PeerTTL, cfg.Rand),
	}
	s.reports = newReports(cfg, s.m.reg)
	s.mux.HandleFunc("POST "+discovery.AnnouncePath, s.handleAnnounce)
	s.mux.HandleFunc("POST "+discovery.ReportPath, s.handleReport)
	s.mux.HandleFunc("GET /api/swarms", s.handleSwarms)
	if c, ok := cfg.Audit.(prometheus.Collector); ok {
		s.m.reg.MustRegister(c) // the audit log's written and dropped counts
	}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	return s
}

// Handler returns the tracker's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Run listens on cfg.Listen and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err // already names the address: "listen tcp 1.2.3.4:5: ..."
	}
	return New(cfg).Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then shuts down gracefully and returns
// nil. It also sweeps expired peers once per interval, so memory is freed
// even when no one announces.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("tracker listening", "addr", ln.Addr().String(), "interval", s.cfg.Interval, "peer_ttl", s.cfg.PeerTTL)

	sweep := time.NewTicker(s.cfg.Interval)
	defer sweep.Stop()
	for {
		select {
		case <-sweep.C:
			s.Sweep()
		case err := <-errc:
			return fmt.Errorf("tracker on %s: %w", ln.Addr(), err)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			err := srv.Shutdown(sctx)
			<-errc // http.ErrServerClosed once Shutdown began
			if err != nil {
				return fmt.Errorf("tracker on %s: shutdown: %w", ln.Addr(), err)
			}
			s.log.Info("tracker stopped")
			return nil
		}
	}
}

// Sweep drops peers whose TTL has passed on the configured clock. Announces
// and /api/swarms also expire lazily; Sweep is for idle periods and tests.
func (s *Server) Sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
}

func (s *Server) expireLocked() {
	if n := s.st.expire(s.cfg.Clock.Now()); n > 0 {
		s.m.expired.Add(float64(n))
		s.log.Debug("peers expired", "count", n)
		s.gaugesLocked()
	}
}

func (s *Server) gaugesLocked() {
	s.m.swarms.Set(float64(len(s.st.swarms)))
	s.m.peers.Set(float64(s.st.numPeers()))
	seeds := 0
	for _, sw := range s.st.swarms {
		seeds += sw.seeds
	}
	s.m.seeds.Set(float64(seeds))
}

func (s *Server) handleAnnounce(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, discovery.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.reject(w, r, &discovery.FieldError{Field: "body", Reason: fmt.Sprintf("larger than %d bytes", discovery.MaxBodyBytes)})
		} else {
			s.reject(w, r, &discovery.FieldError{Field: "body", Reason: "read: " + err.Error()})
		}
		return
	}
	req, err := discovery.DecodeAnnounceRequest(bytes.NewReader(body))
	if err != nil {
		s.reject(w, r, err)
		return
	}
	want := s.cfg.MaxPeers
	if req.NumWant > 0 {
		want = min(req.NumWant, s.cfg.MaxPeers)
	}

	s.mu.Lock()
	s.expireLocked()
	sw := s.st.swarms[req.Content]
	wasIn := sw != nil && sw.peers[req.Peer] != nil
	now := s.cfg.Clock.Now()
	e := s.st.announce(&req, now)
	peers := []discovery.PeerInfo{}
	if e != nil {
		peers = s.st.sample(e, want)
	}
	// ±10% so peers that arrived together drift apart.
	interval := time.Duration(float64(s.cfg.Interval) * (0.9 + 0.2*s.cfg.Rand.Float64()))
	s.gaugesLocked()
	s.mu.Unlock()
	if isIn := e != nil; isIn != wasIn {
		kind := audit.KindJoin
		if !isIn {
			kind = audit.KindLeave
		}
		s.cfg.Audit.Record(audit.Event{Time: now, Kind: kind, Content: req.Content.String(), Peer: req.Peer, IP: r.RemoteAddr})
	}
	peers = s.reports.filter(peers, s.cfg.Clock.Now()) // reported by enough distinct peers: withheld

	s.m.announces.WithLabelValues(resultOK).Inc()
	writeJSON(w, http.StatusOK, discovery.AnnounceResponse{
		IntervalS:    discovery.Seconds(interval),
		MinIntervalS: discovery.Seconds(s.cfg.MinInterval),
		Peers:        peers,
	})
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request, err error) {
	s.m.announces.WithLabelValues(resultInvalid).Inc()
	s.log.Debug("announce rejected", "remote", r.RemoteAddr, "err", err)
	resp := struct {
		Error string `json:"error"`
		Field string `json:"field,omitempty"`
	}{Error: err.Error()}
	var fe *discovery.FieldError
	if errors.As(err, &fe) {
		resp.Field = fe.Field
	}
	writeJSON(w, http.StatusBadRequest, resp)
}

// SwarmsResponse is the body of GET /api/swarms.
type SwarmsResponse struct {
	Swarms []SwarmStats `json:"swarms"` // most peers first
}

// Swarms returns the current per-swarm statistics, most peers first.
func (s *Server) Swarms() []SwarmStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	return s.st.stats()
}

func (s *Server) handleSwarms(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, SwarmsResponse{Swarms: s.Swarms()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}
