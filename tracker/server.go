// Package tracker is the tracker role: the rendezvous where peers announce
// which content they hold or want and learn other peers of the same swarm,
// same region first. State is in memory (a restarted tracker refills within
// one announce interval) or, with Config.Redis, in Redis, shared by any
// number of replicas (redisstore.go).
//
// Every announce is signed by the peer's key and checked (see
// handleAnnounce); a swarm is a content within one tenant, and which tenant
// an announce belongs to is for Config.Authorize to say.
//
// It serves POST /announce (the wire types live in package discovery),
// POST /report (report.go), GET /api/swarms (paged, behind an admin
// credential) and GET /metrics. Only cmd/shoal and the demo import it.
package tracker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
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
	cfg   Config
	log   *slog.Logger
	m     *metrics
	mux   *http.ServeMux
	rates rateLimits
	audit audit.Sink
	admin [sha256.Size]byte // hash of cfg.AdminToken, compared in constant time

	store peerStore // memStore or redisStore; safe for concurrent use

	reports *reports // reports of proven offences (report.go); its own lock
}

// New returns a Server for cfg, with defaults filled in, keeping its state
// in memory. Config.Redis is for Open and Run; New ignores it.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := newServer(cfg)
	s.store = newMemStore(cfg, s.m)
	return s
}

// Open returns a Server for cfg: in memory, or on the Redis at cfg.Redis.
// It fails when that URL is unusable or the Redis does not answer. Close
// releases the connections.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.Redis == "" {
		return New(cfg), nil
	}
	s := newServer(cfg)
	st, err := openRedisStore(ctx, cfg, s.m)
	if err != nil {
		return nil, err
	}
	s.store = st
	return s, nil
}

// Close releases the Server's store (its Redis connections, if any).
func (s *Server) Close() error { return s.store.close() }

func newServer(cfg Config) *Server {
	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger.With("role", "tracker"),
		m:     newMetrics(),
		mux:   http.NewServeMux(),
		rates: newRateLimits(cfg),
		audit: cfg.Audit,
		admin: sha256.Sum256([]byte(cfg.AdminToken)),
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
	s, err := Open(ctx, cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer s.Close()
	return s.Serve(ctx, ln)
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
	s.log.Info("tracker listening", "addr", ln.Addr().String(), "interval", s.cfg.Interval, "peer_ttl", s.cfg.PeerTTL, "store", s.storeName())
	if s.cfg.Authorize == nil {
		s.log.Info("open tracker: announces need no token, every peer is in one tenant")
	}
	if s.cfg.AllowUnsigned {
		s.log.Warn("unsigned announces accepted: anyone can speak for any peer ID")
	}
	if s.cfg.AdminToken == "" {
		s.log.Info("swarm listing /api/swarms disabled: no admin token configured")
	}

	sweep := time.NewTicker(s.cfg.Interval)
	defer sweep.Stop()
	for {
		select {
		case <-sweep.C:
			s.sweep(ctx)
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
	s.sweep(context.Background())
}

func (s *Server) sweep(ctx context.Context) {
	now := s.cfg.Clock.Now()
	gone, err := s.store.expire(ctx, now)
	if err != nil {
		s.log.Warn("sweeping expired peers", "err", err)
	}
	s.record(s.leaveEvents(nil, gone, now))
}

// leaveEvents counts the peers a store dropped for silence and appends
// their leave events to events.
func (s *Server) leaveEvents(events []audit.Event, gone []leftPeer, now time.Time) []audit.Event {
	if len(gone) == 0 {
		return events
	}
	s.m.expired.Add(float64(len(gone)))
	s.log.Debug("peers expired", "count", len(gone))
	for _, e := range gone {
		events = append(events, audit.Event{Time: now, Kind: audit.KindLeave, Tenant: e.key.tenant,
			Content: e.key.content.String(), Peer: e.id, IP: e.ip.String(), Reason: "expired"})
	}
	return events
}

func (s *Server) record(events []audit.Event) {
	for _, e := range events {
		s.audit.Record(e)
	}
}

// refusal is an announce the tracker turns down after decoding it.
type refusal struct {
	status int
	result string // metrics label
	kind   string // audit kind; "" for none
	msg    string
}

// handleAnnounce checks an announce in order of cost, then records it:
//  1. the body decodes and every field is within the protocol's limits;
//  2. the client address and its /24 or /48 are within their rate limits
//     (before any signature is checked, so a flood costs little);
//  3. the signature verifies for the peer ID the announce names, and its
//     timestamp is within the clock skew (unless AllowUnsigned and unsigned);
//  4. Authorize, if set, grants a tenant and regions for the token;
//  5. the announced addresses are filtered (see filterAddrs);
//  6. under the lock: not older than the last accepted announce of the
//     peer (a replay), and within the caps on swarms and peers.
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
	ip, err := remoteIP(r, s.cfg.TrustForwarded)
	if err != nil {
		s.reject(w, r, &discovery.FieldError{Field: "client address", Reason: err.Error()})
		return
	}
	now := s.cfg.Clock.Now()
	ev := audit.Event{Time: now, Content: req.Content.String(), Peer: req.Peer, IP: ip.String()}
	refuse := func(rf refusal) {
		s.m.announces.WithLabelValues(rf.result).Inc()
		s.log.Debug("announce refused", "remote", ip, "peer", req.Peer, "content", req.Content.Short(), "reason", rf.msg)
		if rf.kind != "" {
			ev.Kind, ev.Reason = rf.kind, rf.msg
			s.audit.Record(ev)
		}
		if rf.status == http.StatusTooManyRequests || rf.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", fmt.Sprint(int(max(s.cfg.MinInterval/time.Second, 1))))
		}
		writeJSON(w, rf.status, errorBody{Error: rf.msg})
	}

	if by, first := s.rates.allow(ip, now); by != "" {
		rf := refusal{status: http.StatusTooManyRequests, result: resultLimited, msg: "rate limit: too many announces from " + by}
		if first {
			rf.kind = audit.KindAnnounceRejected
		}
		refuse(rf)
		return
	}
	if len(req.Sig) > 0 || !s.cfg.AllowUnsigned {
		if err := req.VerifySignature(now, s.cfg.ClockSkew); err != nil {
			refuse(refusal{status: http.StatusForbidden, result: resultForged, kind: audit.KindAnnounceRejected, msg: err.Error()})
			return
		}
	}

	grant := Grant{}
	if s.cfg.Authorize != nil {
		ar := AuthRequest{Token: req.Token, Content: req.Content, Peer: req.Peer, RemoteIP: ip}
		if l := s.cfg.Manifests; l != nil {
			ar.Manifest = func(ctx context.Context) (ManifestInfo, error) { return l.Lookup(ctx, req.Content) }
		}
		if grant, err = s.cfg.Authorize(r.Context(), ar); err != nil {
			refuse(refusal{status: http.StatusForbidden, result: resultRefused, kind: audit.KindTokenRefused, msg: "token refused: " + err.Error()})
			return
		}
		ev.Tenant = grant.Tenant
	}
	ad := admission{key: swarmKey{grant.Tenant, req.Content}, region: req.Region, observed: ip, regions: grant.Regions}
	if grant.Region != "" {
		ad.region, ad.trusted = grant.Region, true
	}
	if !grant.allows(grant.Region) {
		refuse(refusal{status: http.StatusForbidden, result: resultRefused, kind: audit.KindTokenRefused,
			msg: fmt.Sprintf("token refused: %v: peer in %q, content allowed in %q", ErrOutsideRegions, grant.Region, grant.Regions)})
		return
	}
	var dropped []droppedAddr
	ad.addrs, dropped = filterAddrs(req.Addrs, ip)
	for _, d := range dropped {
		s.log.Debug("announced address dropped", "peer", req.Peer, "remote", ip, "addr", d.addr, "reason", d.reason)
	}

	want := s.cfg.MaxPeers
	if req.NumWant > 0 {
		want = min(req.NumWant, s.cfg.MaxPeers)
	}
	res, err := s.store.announce(r.Context(), &req, ad, want, now)
	s.record(s.leaveEvents(nil, res.expired, now))
	// ±10% so peers that arrived together drift apart.
	interval := time.Duration(float64(s.cfg.Interval) * (0.9 + 0.2*rand.Float64()))
	peers := res.peers
	if peers == nil {
		peers = []discovery.PeerInfo{}
	}
	peers = s.reports.filter(peers, now) // reported by enough distinct peers: withheld

	switch {
	case errors.Is(err, errReplay):
		refuse(refusal{status: http.StatusForbidden, result: resultForged, kind: audit.KindAnnounceRejected, msg: err.Error()})
		return
	case errors.Is(err, errTooMany):
		refuse(refusal{status: http.StatusServiceUnavailable, result: resultFull, kind: audit.KindAnnounceRejected, msg: err.Error()})
		return
	case err != nil:
		s.log.Warn("announce not recorded", "peer", req.Peer, "content", req.Content.Short(), "err", err)
		refuse(refusal{status: http.StatusServiceUnavailable, result: resultStore, msg: err.Error()})
		return
	}
	switch {
	case res.joined:
		ev.Kind, ev.Reason = audit.KindJoin, string(req.Event)
		s.audit.Record(ev)
		for _, d := range dropped {
			if d.foreign {
				// No address in the reason: the audit log pseudonymises
				// addresses (the IP field) and reasons are kept verbatim.
				ev.Kind, ev.Reason = audit.KindAnnounceRejected, "foreign address dropped: not the announcing host"
				s.audit.Record(ev)
			}
		}
	case res.left:
		ev.Kind, ev.Reason = audit.KindLeave, "stopped"
		s.audit.Record(ev)
	case res.capped != "":
		s.m.unlisted.Inc()
		s.log.Debug("peer answered but not listed", "peer", req.Peer, "reason", res.capped)
	}
	s.m.announces.WithLabelValues(resultOK).Inc()
	writeJSON(w, http.StatusOK, discovery.AnnounceResponse{
		IntervalS:    discovery.Seconds(interval),
		MinIntervalS: discovery.Seconds(s.cfg.MinInterval),
		Peers:        peers,
	})
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request, err error) {
	s.m.announces.WithLabelValues(resultInvalid).Inc()
	s.log.Debug("announce rejected", "remote", r.RemoteAddr, "err", err)
	resp := errorBody{Error: err.Error()}
	var fe *discovery.FieldError
	if errors.As(err, &fe) {
		resp.Field = fe.Field
	}
	writeJSON(w, http.StatusBadRequest, resp)
}

// Swarms returns the current per-swarm statistics, most peers first. It
// pages through the whole store: for tests and in-process callers; the HTTP
// listing is paged.
func (s *Server) Swarms() []SwarmStats {
	ctx := context.Background()
	s.sweep(ctx)
	var out []SwarmStats
	var after *swarmKey
	for {
		page, next, err := s.store.page(ctx, after, MaxAdminPageSize, s.cfg.Clock.Now())
		if err != nil {
			s.log.Warn("listing swarms", "err", err)
			break
		}
		out = append(out, page...)
		if next == nil {
			break
		}
		after = next
	}
	sortByPeers(out)
	return out
}

func (s *Server) storeName() string {
	if _, ok := s.store.(*redisStore); ok {
		return "redis"
	}
	return "memory"
}

// observedIP is remoteIP as text for an audit event, empty when r has no
// usable client address.
func observedIP(r *http.Request, trust bool) string {
	ip, err := remoteIP(r, trust)
	if err != nil {
		return ""
	}
	return ip.String()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}
