package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

// newFleetServer returns a tracker on a manual clock that takes unsigned
// reports, with no rate limit per address; change adjusts its Config.
func newFleetServer(t testing.TB, change func(*Config)) (*Server, *core.ManualClock) {
	t.Helper()
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 3, 0, time.UTC)}
	cfg := Config{Clock: clk, Logger: quiet, AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1, AdminToken: testAdminToken}
	if change != nil {
		change(&cfg)
	}
	return New(cfg), clk
}

func postTelemetry(t testing.TB, s *Server, r discovery.TelemetryReport) (int, string) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	hr := httptest.NewRequest(http.MethodPost, discovery.TelemetryPath, bytes.NewReader(b))
	hr.RemoteAddr = "127.0.0.1:40000"
	s.Handler().ServeHTTP(rec, hr)
	return rec.Code, rec.Body.String()
}

func mustReport(t testing.TB, s *Server, r discovery.TelemetryReport) {
	t.Helper()
	if code, body := postTelemetry(t, s, r); code != http.StatusAccepted {
		t.Fatalf("report seq %d of %s: HTTP %d: %s", r.Seq, r.Peer, code, body)
	}
}

func tel(peer string, seq int64) discovery.TelemetryReport {
	return discovery.TelemetryReport{Peer: peer, Seq: seq, IntervalS: 10, Region: "eu", Network: "AS1", Device: "tv"}
}

// fleetMetric returns the sample of the metric family name whose labels
// include want, or nil.
func fleetMetric(t testing.TB, s *Server, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := s.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func fleetValue(t testing.TB, s *Server, name string, want map[string]string) float64 {
	t.Helper()
	m := fleetMetric(t, s, name, want)
	switch {
	case m == nil:
		t.Fatalf("no %s%v on /metrics", name, want)
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", name)
	return 0
}

func fleetAPI(t testing.TB, s *Server, query, auth string) (int, FleetResponse) {
	t.Helper()
	rec := httptest.NewRecorder()
	hr := httptest.NewRequest(http.MethodGet, "/api/fleet"+query, nil)
	if auth != "" {
		hr.Header.Set("Authorization", "Bearer "+auth)
	}
	s.Handler().ServeHTTP(rec, hr)
	var resp FleetResponse
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("GET /api/fleet%s: %v: %s", query, err, rec.Body)
		}
	}
	return rec.Code, resp
}

var euTV = map[string]string{"tenant": "", "region": "eu", "network": "AS1", "device": "tv", "cohort": ""}

func TestFleetCountsReports(t *testing.T) {
	s, clk := newFleetServer(t, nil)
	a := tel("peer-a", 1)
	a.FromPeers, a.FromOrigin, a.Uploaded, a.Chunks, a.RareChunks, a.Swarms = 1000, 200, 300, 50, 5, 1
	a.Startups, a.StartupS = []int64{1, 0, 1, 0, 0, 0, 1}, 10.9
	a.Stalls, a.StallS, a.WatchS = 2, 1.5, 9.5
	mustReport(t, s, a)
	b := tel("peer-b", 1)
	b.FromPeers, b.Chunks = 10, 20
	b.Startups = []int64{0, 0, 0, 0, 0, 1, 0}
	mustReport(t, s, b)
	clk.Advance(6 * time.Second)
	a.Seq, a.Chunks, a.RareChunks = 2, 60, 0 // gauges replace, counters add
	mustReport(t, s, a)

	for name, want := range map[string]float64{
		"shoal_fleet_from_peers_bytes_total":  2010,
		"shoal_fleet_from_origin_bytes_total": 400,
		"shoal_fleet_uploaded_bytes_total":    600,
		"shoal_fleet_stalls_total":            4,
		"shoal_fleet_stall_seconds_total":     3,
		"shoal_fleet_watch_seconds_total":     19,
		"shoal_fleet_peers":                   2,
		"shoal_fleet_chunks":                  80,
		"shoal_fleet_rare_chunks":             0,
	} {
		if got := fleetValue(t, s, name, euTV); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	h := fleetMetric(t, s, "shoal_fleet_startups", euTV).GetHistogram()
	if h.GetSampleCount() != 7 || h.GetSampleSum() != 21.8 {
		t.Errorf("startups histogram count %d sum %v, want 7 and 21.8", h.GetSampleCount(), h.GetSampleSum())
	}
	wantCum := map[float64]uint64{0.25: 2, 0.5: 2, 1: 4, 2: 4, 4: 4, 8: 5}
	for _, b := range h.GetBucket() {
		if w, ok := wantCum[b.GetUpperBound()]; !ok || b.GetCumulativeCount() != w {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
	if len(h.GetBucket()) != len(discovery.StartupBucketsS) {
		t.Errorf("%d buckets, want the %d of discovery.StartupBucketsS", len(h.GetBucket()), len(discovery.StartupBucketsS))
	}

	// Two intervals of silence: peer-b no longer counts as present, peer-a
	// (who reported 6 s later) still does, and then neither.
	clk.Advance(15 * time.Second)
	if got := fleetValue(t, s, "shoal_fleet_peers", euTV); got != 1 {
		t.Errorf("after peer-b's two intervals of silence: %v peers, want 1", got)
	}
	if got := fleetValue(t, s, "shoal_fleet_chunks", euTV); got != 60 {
		t.Errorf("after peer-b left: %v chunks, want peer-a's 60", got)
	}
	clk.Advance(6 * time.Second)
	if got := fleetValue(t, s, "shoal_fleet_peers", euTV); got != 0 {
		t.Errorf("after both fell silent: %v peers, want 0", got)
	}
	if got := fleetValue(t, s, "shoal_fleet_from_peers_bytes_total", euTV); got != 2010 {
		t.Errorf("counters went down with the peers: %v", got)
	}
}

func TestFleetIgnoresRepeatsAndLimitsRate(t *testing.T) {
	s, clk := newFleetServer(t, nil)
	r := tel("peer-a", 5)
	r.FromPeers = 100
	mustReport(t, s, r)
	clk.Advance(10 * time.Second)
	if code, body := postTelemetry(t, s, r); code != http.StatusOK {
		t.Fatalf("a repeat of seq 5: HTTP %d: %s, want 200 and ignored", code, body)
	}
	r.Seq = 4
	if code, _ := postTelemetry(t, s, r); code != http.StatusOK {
		t.Fatalf("an older seq: HTTP %d, want 200 and ignored", code)
	}
	if got := fleetValue(t, s, "shoal_fleet_from_peers_bytes_total", euTV); got != 100 {
		t.Fatalf("repeats were counted: %v bytes, want 100", got)
	}
	r.Seq = 6
	mustReport(t, s, r)
	clk.Advance(4 * time.Second) // under half of the 10 s interval
	r.Seq = 7
	rec := httptest.NewRecorder()
	b, _ := json.Marshal(r)
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, discovery.TelemetryPath, bytes.NewReader(b)))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("a report 4 s after the last with a 10 s interval: HTTP %d, Retry-After %q: %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	clk.Advance(time.Second)
	mustReport(t, s, r)
	if got := fleetValue(t, s, "shoal_fleet_from_peers_bytes_total", euTV); got != 300 {
		t.Fatalf("%v bytes, want 300", got)
	}
	if got := fleetValue(t, s, "shoal_fleet_reports_total", map[string]string{"result": "repeat"}); got != 2 {
		t.Fatalf("%v repeats counted, want 2", got)
	}
}

// TestFleetFoldsLabelSetsBeyondTheCap: past MaxSeries, new label sets count
// under one set labelled "other"; existing sets keep counting.
func TestFleetFoldsLabelSetsBeyondTheCap(t *testing.T) {
	s, _ := newFleetServer(t, func(c *Config) { c.Telemetry.MaxSeries = 3 })
	for i := range 6 {
		r := tel(fmt.Sprintf("peer-%d", i), 1)
		r.Region = fmt.Sprintf("r%d", i)
		r.FromOrigin = int64(i + 1)
		mustReport(t, s, r)
	}
	r := tel("peer-again", 1)
	r.Region, r.FromOrigin = "r0", 100
	mustReport(t, s, r)
	if got := fleetValue(t, s, "shoal_fleet_series", nil); got != 4 {
		t.Errorf("%v label sets, want 3 and other", got)
	}
	other := map[string]string{"tenant": "other", "region": "other", "network": "other", "device": "other", "cohort": "other"}
	if got := fleetValue(t, s, "shoal_fleet_from_origin_bytes_total", other); got != 4+5+6 {
		t.Errorf("other: %v bytes, want 15", got)
	}
	if got := fleetValue(t, s, "shoal_fleet_from_origin_bytes_total", map[string]string{"region": "r0"}); got != 101 {
		t.Errorf("r0, an existing set: %v bytes, want 101", got)
	}
	if got := fleetValue(t, s, "shoal_fleet_folded_reports_total", nil); got != 3 {
		t.Errorf("%v folded reports, want 3", got)
	}
	if got := fleetValue(t, s, "shoal_fleet_peers", other); got != 3 {
		t.Errorf("other: %v peers, want 3", got)
	}
}

func TestFleetHistoryWindow(t *testing.T) {
	s, clk := newFleetServer(t, func(c *Config) { c.Telemetry.History = 2 * time.Minute })
	t0 := clk.Now()
	r := tel("peer-a", 1)
	r.FromPeers, r.Startups, r.Chunks = 10, []int64{0, 1, 0, 0, 0, 0, 0}, 5
	mustReport(t, s, r)
	for i := range 14 { // a report every 10 s for 140 s
		clk.Advance(10 * time.Second)
		r.Seq, r.FromPeers, r.Startups = int64(i+2), int64(i+11), nil
		mustReport(t, s, r)
	}
	for _, se := range s.fleet.series {
		if cap(se.hist) > s.fleet.maxPoints() {
			t.Errorf("history holds room for %d points, more than the %d of 2 min", cap(se.hist), s.fleet.maxPoints())
		}
	}
	code, resp := fleetAPI(t, s, "", testAdminToken)
	if code != http.StatusOK || len(resp.Series) != 1 {
		t.Fatalf("HTTP %d, %d series", code, len(resp.Series))
	}
	pts := resp.Series[0].Points
	if oldest := pts[0].T; oldest < clk.Now().Add(-2*time.Minute).Unix()-10 || oldest <= t0.Unix() {
		t.Errorf("oldest point at %d: now %d, history 2 min", oldest, clk.Now().Unix())
	}
	if n := len(pts); n < 12 || n > 13 {
		t.Errorf("%d points for 2 min of 10 s buckets", n)
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].T-pts[i-1].T != 10 {
			t.Fatalf("points %d and %d: t %d then %d, want oldest first, 10 s apart", i-1, i, pts[i-1].T, pts[i].T)
		}
	}
	last := pts[len(pts)-1]
	if last.FromPeers != 24 || last.Peers != 1 || last.Chunks != 5 || len(last.Startups) != discovery.NumStartupBuckets {
		t.Errorf("last point %+v", last)
	}
	if resp.BucketS != 10 || len(resp.StartupBucketsS) != 6 || resp.Thresholds.OffloadMin != DefaultOffloadMin || resp.Thresholds.StartupP95MaxS != 4 ||
		resp.Thresholds.RebufferSPerHourMax != 30 || resp.Thresholds.ScarcityMax != 0.2 || resp.Now != clk.Now().Unix() {
		t.Errorf("response header %+v", resp)
	}
	since := clk.Now().Add(-25 * time.Second).Unix()
	_, resp = fleetAPI(t, s, fmt.Sprintf("?since=%d", since), testAdminToken)
	for _, p := range resp.Series[0].Points {
		if p.T+10 <= since {
			t.Errorf("?since=%d returned the bucket at %d", since, p.T)
		}
	}
	if n := len(resp.Series[0].Points); n != 4 { // the bucket holding since, and 3 after it
		t.Errorf("?since=25 s ago: %d points, want 4", n)
	}
	if code, _ := fleetAPI(t, s, "?since=yesterday", testAdminToken); code != http.StatusBadRequest {
		t.Errorf("?since=yesterday: HTTP %d, want 400", code)
	}
	clk.Advance(3 * time.Minute) // past the history, and silent
	_, resp = fleetAPI(t, s, "", testAdminToken)
	if len(resp.Series) != 0 {
		t.Errorf("3 min after the last report with a 2 min history: %d series", len(resp.Series))
	}
}

func TestFleetAPINeedsAdminToken(t *testing.T) {
	open, _ := newFleetServer(t, func(c *Config) { c.AdminToken = "" })
	if code, _ := fleetAPI(t, open, "", ""); code != http.StatusNotFound {
		t.Errorf("no admin token configured: HTTP %d, want 404 (the history is never open)", code)
	}
	s, _ := newFleetServer(t, nil)
	mustReport(t, s, tel("peer-a", 1))
	for _, auth := range []string{"", "wrong"} {
		if code, _ := fleetAPI(t, s, "", auth); code != http.StatusUnauthorized {
			t.Errorf("admin token %q: HTTP %d, want 401", auth, code)
		}
	}
	if code, resp := fleetAPI(t, s, "", testAdminToken); code != http.StatusOK || len(resp.Series) != 1 {
		t.Errorf("with the admin token: HTTP %d, %d series", code, len(resp.Series))
	}
}

// TestFleetTenantFromToken: a report counts under the tenant its token
// names; a tracker that requires tokens refuses one without; a tenant's
// history holds nothing of another's.
func TestFleetTenantFromToken(t *testing.T) {
	tenants := map[string]string{"tok-a": "a", "tok-b": "b"}
	s, _ := newFleetServer(t, func(c *Config) {
		c.Authorize = func(context.Context, AuthRequest) (Grant, error) {
			return Grant{}, errors.New("announces not under test")
		}
		c.TokenTenant = func(_ context.Context, tok, _ string) (string, error) {
			if tn, ok := tenants[tok]; ok {
				return tn, nil
			}
			return "", errors.New("unknown token")
		}
	})
	r := tel("peer-a", 1)
	r.FromPeers = 77
	if code, body := postTelemetry(t, s, r); code != http.StatusForbidden {
		t.Fatalf("no token on a tracker that requires tokens: HTTP %d: %s", code, body)
	}
	r.Token = "forged"
	if code, body := postTelemetry(t, s, r); code != http.StatusForbidden {
		t.Fatalf("a refused token: HTTP %d: %s", code, body)
	}
	r.Token = "tok-a"
	mustReport(t, s, r)
	if got := fleetValue(t, s, "shoal_fleet_from_peers_bytes_total", map[string]string{"tenant": "a"}); got != 77 {
		t.Errorf("tenant a: %v bytes, want 77", got)
	}
	if m := fleetMetric(t, s, "shoal_fleet_from_peers_bytes_total", map[string]string{"tenant": "b"}); m != nil {
		t.Errorf("tenant b has a series: %v", m)
	}
	_, resp := fleetAPI(t, s, "?tenant=b", testAdminToken)
	if len(resp.Series) != 0 {
		t.Errorf("?tenant=b: %d series of tenant a's data", len(resp.Series))
	}
	_, resp = fleetAPI(t, s, "?tenant=a", testAdminToken)
	if len(resp.Series) != 1 || resp.Series[0].Labels.Tenant != "a" || resp.Series[0].Points[0].FromPeers != 77 {
		t.Errorf("?tenant=a: %+v", resp.Series)
	}
}

func TestFleetChecksSignatures(t *testing.T) {
	s, clk := newFleetServer(t, func(c *Config) { c.AllowUnsigned, c.SessionTTL = false, time.Hour })
	p := newPeer(t, 1)
	r := tel(p.id, 1)
	if code, body := postTelemetry(t, s, r); code != http.StatusForbidden {
		t.Fatalf("unsigned: HTTP %d: %s", code, body)
	}
	if err := r.Sign(p.key, clk.Now()); err != nil {
		t.Fatal(err)
	}
	mustReport(t, s, r)
	r.Seq = 2
	if err := r.Sign(p.key, clk.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if code, body := postTelemetry(t, s, r); code != http.StatusForbidden {
		t.Fatalf("signed an hour ago: HTTP %d: %s", code, body)
	}
	other := newPeer(t, 2)
	r = tel(other.id, 1)
	if err := r.Sign(p.key, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if code, body := postTelemetry(t, s, r); code != http.StatusForbidden {
		t.Fatalf("signed by another peer's key: HTTP %d: %s", code, body)
	}
	// A session ticket the tracker issued to a peer serves as well.
	ticket := s.sess.issue(other.id, 0, clk.Now())
	r.MACWith(*ticket, clk.Now())
	mustReport(t, s, r)
	r.Seq = 2
	clk.Advance(5 * time.Second)
	r.MACWith(discovery.Session{Exp: ticket.Exp, Key: bytes.Repeat([]byte{1}, discovery.SessionKeyLen)}, clk.Now())
	if code, body := postTelemetry(t, s, r); code != http.StatusForbidden {
		t.Fatalf("a MAC with a key the tracker never issued: HTTP %d: %s", code, body)
	}
}

func TestFleetRefusesMalformedWithField(t *testing.T) {
	s, _ := newFleetServer(t, nil)
	r := tel("peer-a", 1)
	r.Device = "smart tv"
	code, body := postTelemetry(t, s, r)
	var eb errorBody
	_ = json.Unmarshal([]byte(body), &eb)
	if code != http.StatusBadRequest || eb.Field != "device" {
		t.Fatalf("a device class with a space: HTTP %d: %s", code, body)
	}
}

// BenchmarkTelemetryReport is one signed report through the handler:
// decode, signature, aggregation, into 1000 label sets.
func BenchmarkTelemetryReport(b *testing.B) {
	s, clk := newFleetServer(b, func(c *Config) { c.AllowUnsigned = false })
	p := newPeer(b, 1)
	bodies := make([][]byte, 1000)
	for i := range bodies {
		r := tel(p.id, int64(i+1))
		r.Region, r.FromPeers, r.Startups = fmt.Sprintf("r%d", i), 1<<20, []int64{1, 0, 0, 0, 0, 0, 0}
		if err := r.Sign(p.key, clk.Now()); err != nil {
			b.Fatal(err)
		}
		bodies[i], _ = json.Marshal(r)
	}
	b.ResetTimer()
	for i := range b.N {
		s.fleet.mu.Lock()
		delete(s.fleet.peers, p.id) // every report is a peer's first: no rate limit per peer
		s.fleet.due = s.fleet.due[:0]
		s.fleet.mu.Unlock()
		rec := httptest.NewRecorder()
		hr := httptest.NewRequest(http.MethodPost, discovery.TelemetryPath, bytes.NewReader(bodies[i%len(bodies)]))
		s.Handler().ServeHTTP(rec, hr)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkFleetHistory is GET /api/fleet over 100 label sets with an
// hour of points each.
func BenchmarkFleetHistory(b *testing.B) {
	s, clk := newFleetServer(b, nil)
	for step := range 360 {
		for i := range 100 {
			r := tel(fmt.Sprintf("peer-%d", i), int64(step+1))
			r.Region, r.FromPeers = fmt.Sprintf("r%d", i), 1<<20
			mustReport(b, s, r)
		}
		clk.Advance(10 * time.Second)
	}
	if _, resp := fleetAPI(b, s, "", testAdminToken); len(resp.Series) != 100 || len(resp.Series[0].Points) < 360 {
		b.Fatalf("%d series", len(resp.Series))
	}
	b.ResetTimer()
	for range b.N {
		rec := httptest.NewRecorder()
		hr := httptest.NewRequest(http.MethodGet, "/api/fleet", nil)
		hr.Header.Set("Authorization", "Bearer "+testAdminToken)
		s.Handler().ServeHTTP(rec, hr)
		if rec.Code != http.StatusOK {
			b.Fatalf("HTTP %d", rec.Code)
		}
		b.SetBytes(int64(rec.Body.Len()))
	}
}

// TestFleetBoundsRememberedPeers: past MaxPeers, the peer due to be
// forgotten soonest goes, with its share of the gauges.
func TestFleetBoundsRememberedPeers(t *testing.T) {
	s, clk := newFleetServer(t, func(c *Config) { c.Telemetry.MaxPeers = 2 })
	for i, name := range []string{"peer-a", "peer-b", "peer-c"} {
		r := tel(name, 1)
		r.Chunks = int64(10 * (i + 1))
		mustReport(t, s, r)
		clk.Advance(time.Second)
	}
	if n := len(s.fleet.peers); n != 2 || s.fleet.peers["peer-a"] != nil {
		t.Fatalf("%d peers remembered (peer-a: %v), want peer-b and peer-c", n, s.fleet.peers["peer-a"] != nil)
	}
	if got := fleetValue(t, s, "shoal_fleet_peers", euTV); got != 2 {
		t.Errorf("%v peers present, want 2", got)
	}
	if got := fleetValue(t, s, "shoal_fleet_chunks", euTV); got != 50 {
		t.Errorf("%v chunks, want peer-b's 20 and peer-c's 30", got)
	}
}
