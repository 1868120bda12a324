package tracker

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// Defaults of the report table (Config.Report*).
const (
	// DefaultReportThreshold is how many distinct reporters (from distinct
	// /24 or /48 networks) it takes to stop handing an offender out.
	DefaultReportThreshold = 3
	// DefaultReportHalfLife is how long a report takes to count half.
	DefaultReportHalfLife = 6 * time.Hour
	// DefaultMaxOffenders bounds the peers the tracker keeps reports on;
	// past it the least recently reported is forgotten.
	DefaultMaxOffenders = 10000
	// DefaultReportsPerMinute is what one address may report per minute
	// (with a burst of as many); more are answered 429.
	DefaultReportsPerMinute = 10
)

const (
	// maxReportersPerOffender bounds the reports kept per offender: more
	// distinct reporters than this add nothing a threshold could use.
	maxReportersPerOffender = 16
	// maxReportLimiters bounds the per-address rate limiters.
	maxReportLimiters = 10000
	// reportFloor: a report decayed below this weight is forgotten.
	reportFloor = 1.0 / 64
)

// reports is what the tracker knows of proven offences. A report is signed
// by its reporter but proves nothing to the tracker by itself, so one
// report never excludes anyone: an offender stops being handed out only
// once reports from Threshold distinct reporters, in distinct networks,
// stand. Each report weighs 1 when made and halves every HalfLife; the
// offender is excluded while the weights of its distinct reporters sum to
// at least Threshold−½ (so Threshold fresh reports exclude it, Threshold−1
// never do, and the exclusion lifts as they decay unless new ones come).
// Safe for concurrent use; it has its own lock, never held with Server.mu.
type reports struct {
	threshold float64
	halfLife  time.Duration
	max       int
	perMinute float64
	clock     core.Clock
	audit     audit.Sink

	accepted, refused prometheus.Counter
	excludedG         prometheus.Gauge

	mu        sync.Mutex
	offenders map[string]*list.Element // guarded by mu: offender ID → *offender in lru
	lru       *list.List               // guarded by mu: least recently reported first
	excluded  int                      // guarded by mu: offenders excluded when last looked at
	limits    map[string]*list.Element // guarded by mu: reporter address → *limiter in limLRU
	limLRU    *list.List               // guarded by mu
}

type offender struct {
	id       string
	by       []reportEntry // distinct reporters and networks, at most maxReportersPerOffender
	excluded bool          // as of the last look, for audit transitions
}

type reportEntry struct {
	reporter string
	network  string // the reporter's /24 or /48, as seen by the tracker
	at       time.Time
}

type limiter struct {
	addr string
	tb   *policy.TokenBucket
}

func newReports(cfg Config, reg prometheus.Registerer) *reports {
	r := &reports{
		threshold: float64(cfg.ReportThreshold), halfLife: cfg.ReportHalfLife, max: cfg.MaxOffenders,
		perMinute: float64(cfg.ReportsPerMinute), clock: cfg.Clock, audit: audit.OrDiscard(cfg.Audit),
		offenders: map[string]*list.Element{}, lru: list.New(),
		limits: map[string]*list.Element{}, limLRU: list.New(),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_tracker_reports_total", Help: "Reports of proven offences accepted.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_tracker_reports_refused_total", Help: "Reports refused: malformed, unsigned, stale, rate-limited or about peers not in the swarm.",
		}),
		excludedG: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_tracker_excluded_peers", Help: "Peers not handed out because enough distinct reporters reported them.",
		}),
	}
	reg.MustRegister(r.accepted, r.refused, r.excludedG)
	return r
}

// network is the /24 (IPv4) or /48 (IPv6) of addr: reporters in one
// network count once, so one host cannot report with many identities.
func reportNetwork(addr netip.Addr) string {
	bits := 48
	if addr.Unmap().Is4() {
		addr, bits = addr.Unmap(), 24
	}
	p, _ := addr.Prefix(bits)
	return p.String()
}

// allow takes one report token for addr (a network: see handleReport).
func (rs *reports) allow(addr string, now time.Time) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var l *limiter
	if el := rs.limits[addr]; el != nil {
		l = el.Value.(*limiter)
		rs.limLRU.MoveToBack(el)
	} else {
		if rs.limLRU.Len() >= maxReportLimiters {
			old := rs.limLRU.Remove(rs.limLRU.Front()).(*limiter)
			delete(rs.limits, old.addr)
		}
		l = &limiter{addr: addr, tb: policy.NewTokenBucket(rs.perMinute/60, int64(rs.perMinute), now)}
		rs.limits[addr] = rs.limLRU.PushBack(l)
	}
	return l.tb.TryTake(now, 1)
}

// standing is o's decayed report weight at now; it drops reports that no
// longer count.
func (rs *reports) standing(o *offender, now time.Time) float64 {
	sum := 0.0
	kept := o.by[:0]
	for _, e := range o.by {
		w := math.Exp2(-now.Sub(e.at).Seconds() / rs.halfLife.Seconds())
		if w > 1 {
			w = 1 // a clock that stepped back
		}
		if w >= reportFloor {
			kept = append(kept, e)
			sum += w
		}
	}
	o.by = kept
	return sum
}

// add records a report of offender by reporter from network at now and
// returns the offender's standing.
func (rs *reports) add(offenderID, reporter, network string, now time.Time) float64 {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var o *offender
	if el := rs.offenders[offenderID]; el != nil {
		o = el.Value.(*offender)
		rs.lru.MoveToBack(el)
	} else {
		if rs.lru.Len() >= rs.max {
			old := rs.lru.Remove(rs.lru.Front()).(*offender)
			delete(rs.offenders, old.id)
			if old.excluded {
				rs.excluded--
			}
		}
		o = &offender{id: offenderID}
		rs.offenders[offenderID] = rs.lru.PushBack(o)
	}
	// One entry per reporter and per network: a repeat refreshes it.
	k := -1
	for i, e := range o.by {
		if e.reporter == reporter || e.network == network {
			k = i
			break
		}
	}
	e := reportEntry{reporter: reporter, network: network, at: now}
	switch {
	case k >= 0:
		o.by[k] = e
	case len(o.by) < maxReportersPerOffender:
		o.by = append(o.by, e)
	default:
		oldest := 0
		for i := range o.by {
			if o.by[i].at.Before(o.by[oldest].at) {
				oldest = i
			}
		}
		o.by[oldest] = e
	}
	s := rs.standing(o, now)
	rs.transitionLocked(o, s, now)
	return s
}

// transitionLocked audits o crossing the threshold either way.
func (rs *reports) transitionLocked(o *offender, standing float64, now time.Time) {
	ex := standing >= rs.threshold-0.5
	if ex == o.excluded {
		return
	}
	o.excluded = ex
	if ex {
		rs.excluded++
		// With no further reports, it lifts when the sum decays below the bar.
		until := now.Add(time.Duration(rs.halfLife.Seconds() * math.Log2(standing/(rs.threshold-0.5)) * float64(time.Second)))
		rs.audit.Record(audit.Event{Time: now, Kind: audit.KindBan, Peer: o.id,
			Reason: fmt.Sprintf("reported by %d distinct reporters", len(o.by)), Until: until})
	} else {
		rs.excluded--
		rs.audit.Record(audit.Event{Time: now, Kind: audit.KindUnban, Peer: o.id, Reason: "reports decayed"})
	}
	rs.excludedG.Set(float64(rs.excluded))
}

// Excluded reports whether the tracker withholds peer id: enough distinct
// reporters reported it recently.
func (rs *reports) Excluded(id string, now time.Time) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	el := rs.offenders[id]
	if el == nil {
		return false
	}
	o := el.Value.(*offender)
	rs.transitionLocked(o, rs.standing(o, now), now)
	return o.excluded
}

// filter drops excluded peers from a peer list about to be handed out.
func (rs *reports) filter(peers []discovery.PeerInfo, now time.Time) []discovery.PeerInfo {
	rs.mu.Lock()
	empty := len(rs.offenders) == 0
	rs.mu.Unlock()
	if empty {
		return peers
	}
	out := peers[:0]
	for _, p := range peers {
		if !rs.Excluded(p.Peer, now) {
			out = append(out, p)
		}
	}
	return out
}

// errNotListed: a report about (or by) a peer not in the content's swarm.
var errNotListed = errors.New("not in the swarm")

// listed reports whether peer is announcing content, in any tenant's swarm
// (a report carries no token). A store that fails counts as not listed.
func (s *Server) listed(ctx context.Context, content core.ContentID, peer string) bool {
	ok, err := s.store.listed(ctx, content, peer, s.cfg.Clock.Now())
	if err != nil {
		s.log.Warn("checking a reported peer", "peer", peer, "err", err)
	}
	return ok
}

// handleReport serves POST /report: a peer reports a chunk that failed
// verification. The report must be well formed, fresh, signed by the
// reporter's key, and name a reporter and an offender both in the
// content's swarm.
func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) {
	rs := s.reports
	now := s.cfg.Clock.Now()
	addr, err := remoteIP(r, s.cfg.TrustForwarded)
	if err != nil {
		rs.refused.Inc()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "remote address " + r.RemoteAddr + ": not an IP"})
		return
	}
	if !rs.allow(prefixOf(addr).String(), now) { // per /24 or /48: one IPv6 host has a /64 of addresses
		rs.refused.Inc()
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": fmt.Sprintf("more than %d reports a minute from your network (%s)", int(rs.perMinute), prefixOf(addr))})
		return
	}
	rep, err := discovery.DecodeReport(r.Body)
	if err == nil {
		err = rep.Verify(now)
	}
	if err == nil && (!s.listed(r.Context(), rep.Content, rep.Reporter) || !s.listed(r.Context(), rep.Content, rep.Offender)) {
		err = &discovery.FieldError{Field: "offender", Reason: fmt.Sprintf("reporter or offender %s of content %s: %v", rep.Offender, rep.Content.Short(), errNotListed)}
	}
	if err != nil {
		rs.refused.Inc()
		s.log.Debug("report refused", "remote", r.RemoteAddr, "err", err)
		resp := map[string]string{"error": err.Error()}
		var fe *discovery.FieldError
		if errors.As(err, &fe) {
			resp["field"] = fe.Field
		}
		writeJSON(w, http.StatusBadRequest, resp)
		return
	}
	standing := rs.add(rep.Offender, rep.Reporter, reportNetwork(addr), now)
	rs.accepted.Inc()
	rs.audit.Record(audit.Event{Time: now, Kind: audit.KindReport, Content: rep.Content.String(), Peer: rep.Offender,
		By: rep.Reporter, IP: addr.String(), Reason: fmt.Sprintf("chunk %d failed verification (sha256 %s)", rep.Chunk, rep.Hash)})
	s.log.Info("offence reported", "offender", rep.Offender, "reporter", rep.Reporter, "content", rep.Content.Short(), "chunk", rep.Chunk, "standing", standing)
	writeJSON(w, http.StatusAccepted, struct{}{})
}
