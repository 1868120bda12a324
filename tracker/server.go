// Package tracker is the tracker role: the rendezvous where peers announce
// which content they hold or want and learn other peers of the same swarm,
// same region first. State is in memory (a restarted tracker refills within
// one announce interval) or, with Config.Redis, in Redis, shared by any
// number of replicas (redisstore.go).
//
// Every announce is signed by the peer's key and checked, or carries a MAC
// made with a session ticket the tracker issued after such a check
// (session.go; see handleAnnounce); a swarm is a content within one
// tenant, and which tenant an announce belongs to is for Config.Authorize
// to say.
//
// It serves POST /announce (the wire types live in package discovery),
// POST /report (report.go), POST /telemetry and GET /api/fleet (fleet
// telemetry: telemetry.go), GET /api/swarms (paged, behind an admin
// credential), the operator's policy (GET /policy, its long poll, and PUT
// /api/policy behind the admin credential: policy.go), the operator's page
// GET /dashboard/ (package dashboard), GET /metrics, and the probes GET
// /healthz and /readyz (ready until shutdown begins, while every
// AddReadyCheck check passes). Only cmd/shoal and the demo import it.
package tracker

import (
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
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/dashboard"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/health"
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
	gate  *gate // bounds announces in flight (overload.go)
	audit audit.Sink
	admin [sha256.Size]byte // hash of cfg.AdminToken, compared in constant time
	sess  *sessions         // session tickets (session.go)

	h     http.Handler  // mux behind the probes and the access log
	ready health.Checks // what /readyz checks
	// draining is set once shutdown begins: /readyz then says so.
	draining atomic.Bool

	store peerStore // memStore or redisStore; safe for concurrent use

	reports *reports // reports of proven offences (report.go); its own lock
	fleet   *fleet   // fleet telemetry (telemetry.go); its own lock

	pol       *policies  // the operator's policy (policy.go)
	pollRates rateLimits // limits on policy long polls, apart from announces'
	// stopBG ends the background loops Open started (the policy watches);
	// bg waits for them. Close does both.
	stopBG context.CancelFunc
	bg     sync.WaitGroup
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
	ownKey := len(cfg.SessionKey) > 0
	cfg = cfg.withDefaults()
	if cfg.Redis == "" {
		s := New(cfg)
		if err := s.startPolicy(ctx); err != nil {
			return nil, err
		}
		return s, nil
	}
	s := newServer(cfg)
	st, err := openRedisStore(ctx, cfg, s.m)
	if err != nil {
		return nil, err
	}
	s.store = st
	s.AddReadyCheck("redis", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := st.c.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("Redis does not answer PING: %w", err)
		}
		return nil
	})
	if !ownKey && cfg.SessionTTL > 0 {
		// Replicas on one Redis share one session secret, kept there, so a
		// ticket from one is good on every other behind the same balancer.
		k, err := st.sessionSecret(ctx, cfg.SessionKey)
		if err != nil {
			st.close()
			return nil, err
		}
		s.sess.setSecret(k)
	}
	if err := s.startPolicy(ctx); err != nil {
		st.close()
		return nil, err
	}
	return s, nil
}

// Close ends the background loops Open started (the policy watches),
// answers any policy poll still held, and releases the Server's store (its
// Redis connections, if any).
func (s *Server) Close() error {
	s.pol.stopWaiting()
	if s.stopBG != nil {
		s.stopBG()
	}
	s.bg.Wait()
	return s.store.close()
}

func newServer(cfg Config) *Server {
	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger.With("role", "tracker"),
		m:     newMetrics(),
		mux:   http.NewServeMux(),
		rates: newRateLimits(cfg),
		gate:  newGate(cfg.MaxInFlight, cfg.QueueWait),
		audit: cfg.Audit,
		admin: sha256.Sum256([]byte(cfg.AdminToken)),
	}
	s.reports = newReports(cfg, s.m.reg)
	s.pol = newPolicies(cfg, s.m.reg)
	s.pollRates = newRateLimits(cfg)
	s.sess = newSessions(cfg.SessionKey, cfg.SessionTTL, cfg.ClockSkew, s.m.reg)
	s.mux.HandleFunc("POST "+discovery.AnnouncePath, s.handleAnnounce)
	s.mux.HandleFunc("POST "+discovery.ReportPath, s.handleReport)
	s.mux.HandleFunc("GET /api/swarms", s.handleSwarms)
	if !cfg.Telemetry.Off {
		s.fleet = newFleet(cfg.Telemetry, cfg.ClockSkew, cfg.Clock, s.m.reg)
		s.mux.HandleFunc("POST "+discovery.TelemetryPath, s.handleTelemetry)
		s.mux.HandleFunc("GET /api/fleet", s.handleFleet)
	}
	s.mux.HandleFunc("GET "+discovery.PolicyPath, s.handlePolicy)
	s.mux.HandleFunc("PUT "+PolicyAPIPath, s.handlePolicyPut)
	s.mux.Handle("GET "+dashboard.Path, dashboard.Handler()) // static; the data it draws needs the admin token
	if c, ok := cfg.Audit.(prometheus.Collector); ok {
		s.m.reg.MustRegister(c) // the audit log's written and dropped counts
	}
	if cfg.AccessLog != nil {
		s.m.reg.MustRegister(cfg.AccessLog)
	}
	// The swarm gauges cost a walk over every swarm: they are brought up to
	// date when scraped, not on every announce.
	prom := promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{})
	s.mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g, ok := s.store.(interface{ refreshGauges() }); ok {
			g.refreshGauges()
		}
		s.m.inFlight.Set(float64(s.gate.inFlight()))
		prom.ServeHTTP(w, r)
	}))
	s.ready.Add("tracker", func() error {
		if s.draining.Load() {
			return errors.New("shutting down")
		}
		return nil
	})
	// Probes first: no rate limit, no token, not in the access log.
	s.h = health.Route(&s.ready, cfg.AccessLog.Wrap("tracker", s.mux))
	return s
}

// Handler returns the tracker's HTTP handler, /healthz and /readyz included.
func (s *Server) Handler() http.Handler { return s.h }

// AddReadyCheck adds a check to /readyz (a shared store's reachability, for
// one). Checks run on every probe, so each must be cheap.
func (s *Server) AddReadyCheck(name string, check health.Check) { s.ready.Add(name, check) }

// Run listens on cfg.Listen and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	// Open applies the defaults itself: it must see which were given (the
	// session secret above all).
	ln, err := net.Listen("tcp", cfg.withDefaults().Listen)
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
	srv := s.newHTTPServer() // httpserver.go
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("tracker listening", "addr", ln.Addr().String(), "interval", s.cfg.Interval, "peer_ttl", s.cfg.PeerTTL,
		"max_inflight", s.cfg.MaxInFlight, "queue_wait", s.cfg.QueueWait, "store", s.storeName())
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
			if err == nil {
				err = net.ErrClosed // the listener was closed under it
			}
			return fmt.Errorf("tracker on %s: %w", ln.Addr(), err)
		case <-ctx.Done():
			s.draining.Store(true)
			s.pol.stopWaiting() // held policy polls answer at once
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			err := srv.ShutdownWithContext(sctx)
			<-errc // nil once shutdown began
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

// handleAnnounce is POST /announce through net/http (Handler): it reads the
// body and hands it to announce. Serve takes announces on its own faster
// path (httpserver.go) to the same announce.
func (s *Server) handleAnnounce(w http.ResponseWriter, r *http.Request) {
	var a answer
	defer a.release()
	body, err := readBody(w, r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.reject(&a, r.RemoteAddr, errBodyTooLarge)
		} else {
			s.reject(&a, r.RemoteAddr, &discovery.FieldError{Field: "body", Reason: "read: " + err.Error()})
		}
	} else {
		ip, ipErr := remoteIP(r, s.cfg.TrustForwarded)
		s.announce(r.Context(), body, ip, ipErr, r.RemoteAddr, &a)
	}
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoStore
	h["Content-Length"] = []string{strconv.Itoa(len(a.body))}
	if a.retryAfter != "" {
		h["Retry-After"] = []string{a.retryAfter}
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body) // the client went away; nothing to do
}

// errBodyTooLarge answers an announce body over discovery.MaxBodyBytes.
var errBodyTooLarge = &discovery.FieldError{Field: "body", Reason: fmt.Sprintf("larger than %d bytes", discovery.MaxBodyBytes)}

// answer is the HTTP answer to an announce, whichever server carries it:
// a JSON body with its status and, on a refusal to come back later, the
// Retry-After header's value.
type answer struct {
	status     int
	retryAfter string // "" for none
	body       []byte // ends with a newline, as encoding/json's Encoder writes
	buf        *[]byte
}

// setJSON makes v, encoded as encoding/json's Encoder would, the answer.
func (a *answer) setJSON(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // errorBody always encodes; keep the answer valid JSON anyway
		b = []byte(`{"error":"internal error"}`)
	}
	a.status, a.body = status, append(b, '\n')
}

// setRetryAfter sets the Retry-After header to d rounded up to whole
// seconds (at least 1) and returns d in seconds for the JSON body.
func (a *answer) setRetryAfter(d time.Duration) float64 {
	var iv float64
	a.retryAfter, iv = retryAfterValue(d)
	return iv
}

// release returns a pooled response buffer; a.body is invalid after.
func (a *answer) release() {
	if a.buf != nil && cap(a.body) <= maxPooledBuf { // one huge response must not pin its buffer
		*a.buf = a.body[:0]
		bufPool.Put(a.buf)
	}
	a.buf, a.body = nil, nil
}

// announce checks an announce in order of cost, then records it, and
// puts the answer in a:
//  1. the body decodes and every field is within the protocol's limits;
//  2. the client address and its /24 or /48 are within their rate limits
//     (before any signature is checked, so a flood costs little);
//  3. a slot among the announces in flight is free within QueueWait, or
//     the tracker is saturated and answers 503 at once (overload.go). The
//     body was read and the rate limits checked first: a slow client
//     holds no slot, and a flooding address gets its 429 without taking
//     one from everyone else;
//  4. the signature verifies for the peer ID the announce names, and its
//     timestamp is within the clock skew (unless AllowUnsigned and unsigned);
//     or, instead of a signature, a MAC made with a session ticket this
//     tracker (or one sharing its secret) issued to that peer ID, which is
//     as good: tickets go only to peers whose signature verified;
//  5. Authorize, if set, grants a tenant and regions for the token, or,
//     for an announce MACed with a ticket that carries a grant (issued only
//     with Regrant set), the grant the tracker issued with the ticket stands
//     for the token once Regrant accepts it (session.go);
//  6. the announced addresses are filtered (see filterAddrs);
//  7. under the lock: not older than the last accepted announce of the
//     peer (a replay), and within the caps on swarms and peers.
//
// ip is the client's address, or ipErr why there is none usable; remote
// is the connection's address, for the debug log.
func (s *Server) announce(ctx context.Context, body []byte, ip netip.Addr, ipErr error, remote string, a *answer) {
	req, err := discovery.DecodeAnnounceBody(body)
	if err != nil {
		s.reject(a, remote, err)
		return
	}
	if ipErr != nil {
		s.reject(a, remote, &discovery.FieldError{Field: "client address", Reason: ipErr.Error()})
		return
	}
	now := s.cfg.Clock.Now()
	// The audit event is built only when one is recorded: most announces
	// record none, and its text fields cost allocations.
	tenant := ""
	record := func(kind, reason string) {
		s.audit.Record(audit.Event{Time: now, Kind: kind, Reason: reason, Tenant: tenant,
			Content: req.Content.String(), Peer: req.Peer, IP: ip.String()})
	}
	refuse := func(rf refusal) {
		s.m.announces.WithLabelValues(rf.result).Inc()
		s.log.Debug("announce refused", "remote", ip, "peer", req.Peer, "content", req.Content.Short(), "reason", rf.msg)
		if rf.kind != "" {
			record(rf.kind, rf.msg)
		}
		eb := errorBody{Error: rf.msg}
		if rf.status == http.StatusTooManyRequests || rf.status == http.StatusServiceUnavailable {
			eb.IntervalS = a.setRetryAfter(s.cfg.MinInterval)
		}
		a.setJSON(rf.status, eb)
	}

	if by, first := s.rates.allow(ip, now); by != "" {
		rf := refusal{status: http.StatusTooManyRequests, result: resultLimited, msg: "rate limit: too many announces from " + by}
		if first {
			rf.kind = audit.KindAnnounceRejected
		}
		refuse(rf)
		return
	}
	if !s.gate.enter(ctx) {
		s.m.overloaded.Inc()
		// Jittered so the refused do not all come back in the same second.
		d := time.Duration(float64(s.cfg.OverloadRetryAfter) * (1 + 0.5*rand.Float64()))
		iv := a.setRetryAfter(d)
		a.setJSON(http.StatusServiceUnavailable, errorBody{
			Error:     fmt.Sprintf("tracker overloaded: more than %d announces in flight for %v; retry after %.0f s", s.cfg.MaxInFlight, s.cfg.QueueWait, iv),
			IntervalS: iv,
		})
		return
	}
	defer s.gate.leave()
	proven := false // the peer proved it holds the key of req.Peer
	var maced bool  // proven by a session ticket's MAC, not a signature
	switch {
	case len(req.MAC) > 0:
		if err := s.sess.verify(&req, now); err != nil {
			rf := refusal{status: http.StatusUnauthorized, result: resultTicket, kind: audit.KindAnnounceRejected, msg: err.Error()}
			if errors.Is(err, discovery.ErrSessionExpired) {
				rf.kind = "" // routine: the peer signs its next announce
			} else if errors.Is(err, discovery.ErrStale) {
				rf.status, rf.result = http.StatusForbidden, resultForged // as for a signed announce
			}
			refuse(rf)
			return
		}
		proven, maced = true, true
	case len(req.Sig) > 0 || !s.cfg.AllowUnsigned:
		if err := req.VerifySignature(now, s.cfg.ClockSkew); err != nil {
			refuse(refusal{status: http.StatusForbidden, result: resultForged, kind: audit.KindAnnounceRejected, msg: err.Error()})
			return
		}
		proven = true
	}

	grant := Grant{}
	granted := false // taken on the ticket's grant, not a token check
	switch {
	case s.cfg.Authorize == nil:
	case maced && len(req.Grant) > 0:
		if s.cfg.Regrant == nil {
			// Issued by a replica that reuses verdicts; this one does
			// not: the peer signs again, and gets a ticket without one.
			refuse(refusal{status: http.StatusUnauthorized, result: resultTicket, kind: audit.KindAnnounceRejected,
				msg: fmt.Sprintf("%v: this tracker takes no grants", discovery.ErrSessionInvalid)})
			return
		}
		// The ticket carries the token's verdict, and its key, which the
		// MAC just proved, binds the grant to this peer, content and exp.
		if grant, err = s.sess.grants.decode(req.Grant); err != nil {
			refuse(refusal{status: http.StatusUnauthorized, result: resultTicket, kind: audit.KindAnnounceRejected,
				msg: fmt.Sprintf("%v: %v", discovery.ErrSessionInvalid, err)})
			return
		}
		tenant = grant.Tenant
		// What the token's check would now refuse although the grant
		// stands (its root key withdrawn) is refused as the token.
		if err := s.cfg.Regrant(grant); err != nil {
			refuse(refusal{status: http.StatusForbidden, result: resultRefused, kind: audit.KindTokenRefused, msg: "token refused: " + err.Error()})
			return
		}
		granted = true
	default:
		ar := AuthRequest{Token: req.Token, Content: req.Content, Peer: req.Peer, RemoteIP: ip}
		if l := s.cfg.Manifests; l != nil {
			ar.Manifest = func(ctx context.Context) (ManifestInfo, error) { return l.Lookup(ctx, req.Content) }
		}
		if grant, err = s.cfg.Authorize(ctx, ar); err != nil {
			refuse(refusal{status: http.StatusForbidden, result: resultRefused, kind: audit.KindTokenRefused, msg: "token refused: " + err.Error()})
			return
		}
		tenant = grant.Tenant
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
	ad.addrs, dropped = filterAddrs(req.Addrs, ip, s.cfg.Relays)
	for _, d := range dropped {
		s.log.Debug("announced address dropped", "peer", req.Peer, "remote", ip, "addr", d.addr, "reason", d.reason)
	}

	want := s.cfg.MaxPeers
	if req.NumWant > 0 {
		want = min(req.NumWant, s.cfg.MaxPeers)
	}
	res, err := s.store.announce(ctx, &req, ad, want, now)
	defer releasePeers(res.pooled) // after the answer is encoded below
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
		record(audit.KindJoin, string(req.Event))
		for _, d := range dropped {
			if d.foreign {
				// No address in the reason: the audit log pseudonymises
				// addresses (the IP field) and reasons are kept verbatim.
				record(audit.KindAnnounceRejected, "foreign address dropped: not the announcing host")
			}
		}
	case res.left:
		record(audit.KindLeave, "stopped")
	case res.capped != "":
		s.m.unlisted.Inc()
		s.log.Debug("peer answered but not listed", "peer", req.Peer, "reason", res.capped)
	}
	s.m.ok.Inc()
	if granted {
		s.sess.granted.Inc()
	}
	resp := discovery.AnnounceResponse{
		IntervalS:    discovery.Seconds(interval),
		MinIntervalS: discovery.Seconds(s.cfg.MinInterval),
		Peers:        peers,
		Policy:       s.pol.newerThan(req.PolicySerial), // nil unless the peer's is older
	}
	// Tickets only ever follow a verified signature: a ticket cannot
	// renew itself, so one that leaks is good until its exp and no longer.
	// With a token checked and Regrant set, the ticket carries its verdict
	// (session.go).
	if proven && !maced && req.Event != discovery.EventStopped {
		if s.cfg.Authorize != nil && s.cfg.Regrant != nil {
			resp.Session = s.sess.issueGrant(req.Peer, req.Content, &grant, now)
		} else {
			resp.Session = s.sess.issue(req.Peer, 0, now)
		}
	}
	a.buf = bufPool.Get().(*[]byte)
	a.status = http.StatusOK
	a.body = append(resp.AppendJSON((*a.buf)[:0]), '\n') // encoding/json's Encoder ends with one too
}

// readBody reads an announce body, refusing more than
// discovery.MaxBodyBytes, into a buffer sized by Content-Length: one
// allocation for a body that says its length, as every peer's does.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	n := 1024
	if r.ContentLength > 0 && r.ContentLength <= discovery.MaxBodyBytes {
		n = int(r.ContentLength) + 1 // +1: ReadAll-style EOF check without growing
	}
	rd := http.MaxBytesReader(w, r.Body, discovery.MaxBodyBytes)
	buf := make([]byte, 0, n)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // let append pick the growth
		}
		m, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Response buffers, reused across announces: a response of 50 peers is a
// few KiB, written from one buffer without reflection.
const maxPooledBuf = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// Header values shared by every response; net/http only reads them.
var (
	hdrJSON    = []string{"application/json"}
	hdrNoStore = []string{"no-store"}
)

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	// IntervalS is, on a 429 or 503, when to try again in seconds: the
	// Retry-After header's value, with fractions.
	IntervalS float64 `json:"interval_s,omitempty"`
}

// reject answers an announce that does not decode or is out of the
// protocol's limits: 400, and which field is wrong.
func (s *Server) reject(a *answer, remote string, err error) {
	s.m.invalid.Inc()
	s.log.Debug("announce rejected", "remote", remote, "err", err)
	resp := errorBody{Error: err.Error()}
	var fe *discovery.FieldError
	if errors.As(err, &fe) {
		resp.Field = fe.Field
	}
	a.setJSON(http.StatusBadRequest, resp)
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
