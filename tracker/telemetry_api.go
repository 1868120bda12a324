package tracker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/discovery"
)

// TokenTenant checks a peer's access token for telemetry, which concerns no
// one content: the token must be valid now, signed by a trusted key and,
// when bound to a peer, bound to peer. It returns the token's tenant. The
// binary adapts token.Verifier.CheckHolder to it.
type TokenTenant func(ctx context.Context, token, peer string) (tenant string, err error)

// FleetResponse is the body of GET /api/fleet.
type FleetResponse struct {
	Now             int64         `json:"now"`      // Unix seconds
	BucketS         int           `json:"bucket_s"` // width of a point, seconds (10)
	StartupBucketsS []float64     `json:"startup_buckets_s"`
	Thresholds      Thresholds    `json:"thresholds"`
	Series          []FleetSeries `json:"series"`
}

// FleetLabels are one label set.
type FleetLabels struct {
	Tenant  string `json:"tenant"`
	Region  string `json:"region"`
	Network string `json:"network"`
	Device  string `json:"device"`
	Cohort  string `json:"cohort"`
}

// FleetSeries is one label set's history: points only for buckets with
// reports, oldest first.
type FleetSeries struct {
	Labels FleetLabels  `json:"labels"`
	Points []FleetPoint `json:"points"`
}

// FleetPoint is one bucket: the sums of the reports received in it, and the
// label set's gauges as of the last of them.
type FleetPoint struct {
	T          int64   `json:"t"` // bucket start, Unix seconds
	FromPeers  int64   `json:"from_peers"`
	FromOrigin int64   `json:"from_origin"`
	Uploaded   int64   `json:"uploaded"`
	Startups   []int64 `json:"startups"` // per bucket of startup_buckets_s, then +Inf
	Stalls     int64   `json:"stalls"`
	StallS     float64 `json:"stall_s"`
	WatchS     float64 `json:"watch_s"`
	Peers      int64   `json:"peers"`
	Chunks     int64   `json:"chunks"`
	RareChunks int64   `json:"rare_chunks"`
}

// handleTelemetry serves POST /telemetry, checked as an announce is, in
// order of cost: the body decodes within limits; the client address is
// within the announce rate limits; a slot among the requests in flight is
// free (the announces' slots, overload.go), or 503; the signature (or a
// session ticket's MAC) verifies for the peer ID it names, unless the
// tracker accepts unsigned requests; the token, when the tracker requires
// tokens, is valid and names the tenant; and the peer's last report is at
// least half an interval old. A report whose seq is not above the peer's
// last is answered 200 and ignored.
func (s *Server) handleTelemetry(w http.ResponseWriter, r *http.Request) {
	f := s.fleet
	refuse := func(result string, status int, eb errorBody) {
		f.reports.WithLabelValues(result).Inc()
		s.log.Debug("telemetry refused", "remote", r.RemoteAddr, "reason", eb.Error)
		writeJSON(w, status, eb)
	}
	rep, err := discovery.DecodeTelemetry(http.MaxBytesReader(w, r.Body, discovery.MaxTelemetryBytes+1))
	if err != nil {
		eb := errorBody{Error: err.Error()}
		var fe *discovery.FieldError
		if errors.As(err, &fe) {
			eb.Field = fe.Field
		}
		refuse(telemetryInvalid, http.StatusBadRequest, eb)
		return
	}
	ip, err := remoteIP(r, s.cfg.TrustForwarded)
	if err != nil {
		refuse(telemetryInvalid, http.StatusBadRequest, errorBody{Field: "client address", Error: err.Error()})
		return
	}
	now := s.cfg.Clock.Now()
	if by, _ := s.rates.allow(ip, now); by != "" {
		eb := errorBody{Error: "rate limit: too many requests from " + by}
		eb.IntervalS = retryAfter(w, s.cfg.MinInterval)
		refuse(telemetryLimited, http.StatusTooManyRequests, eb)
		return
	}
	if !s.gate.enter(r.Context()) { // the announces' slots: a signature check is the same work
		eb := errorBody{Error: fmt.Sprintf("tracker overloaded: more than %d requests in flight; retry later", s.cfg.MaxInFlight)}
		eb.IntervalS = retryAfter(w, s.cfg.OverloadRetryAfter)
		refuse(telemetryOverloaded, http.StatusServiceUnavailable, eb)
		return
	}
	defer s.gate.leave()
	switch {
	case len(rep.MAC) > 0:
		err = s.sess.verifyTelemetry(&rep, now)
	case len(rep.Sig) > 0 || !s.cfg.AllowUnsigned:
		err = rep.VerifySignature(now, s.cfg.ClockSkew)
	}
	if err != nil {
		refuse(telemetryForged, http.StatusForbidden, errorBody{Error: err.Error()})
		return
	}
	tenant := ""
	if s.cfg.Authorize != nil {
		switch {
		case s.cfg.TokenTenant == nil:
			err = errors.New("this tracker requires tokens but cannot check them for telemetry")
		case rep.Token == "":
			err = errors.New("token: missing: this tracker requires an access token")
		default:
			tenant, err = s.cfg.TokenTenant(r.Context(), rep.Token, rep.Peer)
		}
		if err != nil {
			s.audit.Record(audit.Event{Time: now, Kind: audit.KindTokenRefused, Peer: rep.Peer, IP: ip.String(), Reason: "telemetry: " + err.Error()})
			refuse(telemetryRefused, http.StatusForbidden, errorBody{Field: "token", Error: "token refused: " + err.Error()})
			return
		}
	}
	repeat, err := f.add(tenant, &rep, now)
	var soon errTooSoon
	switch {
	case errors.As(err, &soon):
		eb := errorBody{Error: err.Error()}
		eb.IntervalS = retryAfter(w, soon.wait)
		refuse(telemetryLimited, http.StatusTooManyRequests, eb)
	case repeat:
		f.reports.WithLabelValues(telemetryRepeat).Inc()
		writeJSON(w, http.StatusOK, map[string]string{"ignored": fmt.Sprintf("seq %d is not above the last accepted from peer %s", rep.Seq, rep.Peer)})
	default:
		f.reports.WithLabelValues(telemetryOK).Inc()
		writeJSON(w, http.StatusAccepted, struct{}{})
	}
}

// verifyTelemetry checks a report that carries a session ticket's MAC.
func (s *sessions) verifyTelemetry(r *discovery.TelemetryReport, now time.Time) error {
	if !s.on() {
		return fmt.Errorf("%w: this tracker issues no session tickets", discovery.ErrSessionInvalid)
	}
	if r.SessExp > now.Add(s.ttl+s.skew).Unix() {
		return fmt.Errorf("%w: ticket of peer %s expires later than any this tracker issues", discovery.ErrSessionInvalid, r.Peer)
	}
	return r.VerifyMAC(s.key(r.Peer, r.SessExp), now, s.skew)
}

// handleFleet serves GET /api/fleet?since=UNIX_SECONDS&tenant=T: the
// history of every label set (of tenant T only, when given) from the
// bucket holding since (default: the whole history). It needs the admin
// token when the tracker has one.
func (s *Server) handleFleet(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AdminToken == "" {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "the fleet history is disabled: the tracker has no admin token (--admin-token)"})
		return
	}
	if !s.adminOK(w, r, audit.Event{Time: s.cfg.Clock.Now(), Kind: audit.KindAdmin, IP: observedIP(r, s.cfg.TrustForwarded)}, "fleet telemetry") {
		return
	}
	q := r.URL.Query()
	now := s.cfg.Clock.Now()
	since := now.Add(-s.cfg.Telemetry.History).Unix()
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, errorBody{Field: "since", Error: "since: want Unix seconds, got " + strconv.Quote(truncate(v, 32))})
			return
		}
		since = n
	}
	tenant, oneTenant := q.Get("tenant"), q.Has("tenant")
	writeJSON(w, http.StatusOK, s.fleet.history(now, since, tenant, oneTenant))
}

// history is the FleetResponse at now for points from the bucket holding
// since, of tenant only when oneTenant.
func (f *fleet) history(now time.Time, since int64, tenant string, oneTenant bool) FleetResponse {
	from := since - since%int64(TelemetryBucket/time.Second)
	resp := FleetResponse{
		Now: now.Unix(), BucketS: int(TelemetryBucket / time.Second),
		StartupBucketsS: discovery.StartupBucketsS, Thresholds: f.cfg.Thresholds, Series: []FleetSeries{},
	}
	f.mu.Lock()
	f.advanceLocked(now)
	for k, s := range f.series {
		if oneTenant && k.tenant != tenant {
			continue
		}
		i, _ := slices.BinarySearchFunc(s.hist, from, func(p point, t int64) int { return cmp.Compare(p.t, t) })
		if i == len(s.hist) {
			continue
		}
		fs := FleetSeries{Labels: FleetLabels{k.tenant, k.region, k.network, k.device, k.cohort}, Points: make([]FleetPoint, 0, len(s.hist)-i)}
		for _, p := range s.hist[i:] {
			st := make([]int64, len(p.startups))
			for j, c := range p.startups {
				st[j] = int64(c)
			}
			fs.Points = append(fs.Points, FleetPoint{T: p.t, FromPeers: p.fromPeers, FromOrigin: p.fromOrigin, Uploaded: p.upld,
				Startups: st, Stalls: int64(p.stalls), StallS: round3(float64(p.stallS)), WatchS: round3(float64(p.watchS)),
				Peers: int64(p.peers), Chunks: p.chunks, RareChunks: p.rare})
		}
		resp.Series = append(resp.Series, fs)
	}
	f.mu.Unlock()
	slices.SortFunc(resp.Series, func(a, b FleetSeries) int {
		x, y := a.Labels, b.Labels
		return cmp.Or(cmp.Compare(x.Tenant, y.Tenant), cmp.Compare(x.Region, y.Region), cmp.Compare(x.Network, y.Network),
			cmp.Compare(x.Device, y.Device), cmp.Compare(x.Cohort, y.Cohort))
	})
	return resp
}

// round3 rounds to the millisecond: float32 sums print short.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
