//go:build e2e

// End-to-end test of the tracker's dashboard (package dashboard) in
// Debian's headless Chromium: a real `shoal tracker` serves the page, the
// page fetches GET /api/fleet with the admin token from its URL fragment,
// draws every chart with the vendored uPlot under its Content-Security-
// Policy, and POSTs back what it drew (points, pixels of each line's
// colour, latest values, the selectors' choices). A screenshot of the page
// is written under the test's temp dir (and to $SHOAL_DASHBOARD_SHOT when
// set) and its path logged.
//
// The page reaches the tracker through a small loopback proxy that also
// takes the page's report (the page may talk to its own origin only) and
// records how the page asked for its data.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/control"
	"github.com/shoal-cdn/shoal/dashboard"
	"github.com/shoal-cdn/shoal/media/mediatest"
	"github.com/shoal-cdn/shoal/player"
)

// dashReportPath is where the page POSTs its self-check (on the proxy).
const dashReportPath = "/dashboard-report"

// dashResult is what dashboard.js POSTs after each update.
type dashResult struct {
	Location  string              `json:"location"` // the page's address once loaded
	Now       int64               `json:"now"`      // the drawn data's "now"
	Loads     int                 `json:"loads"`    // answers drawn: the first whole, then merged updates
	RenderMs  float64             `json:"renderMs"`
	Error     string              `json:"error"`
	Errors    []string            `json:"errors"`
	TokenSent bool                `json:"tokenSent"`
	Series    int                 `json:"series"`
	Options   map[string][]string `json:"options"`
	Charts    []dashLine          `json:"charts"`
	Cohorts   []dashLine          `json:"cohorts"`
}

// dashLine is one line of one chart as drawn.
type dashLine struct {
	Chart          string   `json:"chart"`
	Line           string   `json:"line"`
	Points         int      `json:"points"`
	Last           *float64 `json:"last"`
	Inked          int      `json:"inked"` // plot pixels of the line's colour
	Threshold      *float64 `json:"threshold"`
	ThresholdInked int      `json:"thresholdInked"`
}

func (l dashLine) String() string {
	last := "null"
	if l.Last != nil {
		last = fmt.Sprintf("%.4g", *l.Last)
	}
	s := fmt.Sprintf("%s/%s: points=%d inked=%dpx last=%s", l.Chart, l.Line, l.Points, l.Inked, last)
	if l.Threshold != nil {
		s += fmt.Sprintf(" threshold=%g inked=%dpx", *l.Threshold, l.ThresholdInked)
	}
	return s
}

// fleetRequest is how the page asked for /api/fleet.
type fleetRequest struct {
	url, auth string
}

// dashProxy forwards to a tracker, takes the page's reports, and, with
// fleet set, answers GET /api/fleet itself.
type dashProxy struct {
	*httptest.Server
	results chan dashResult
	fleet   func() []byte

	mu       sync.Mutex
	requests []fleetRequest      // guarded by mu
	served   map[int64]*fleetDoc // guarded by mu: bodies served, by their "now"
}

func newDashProxy(t *testing.T, trackerURL string, fleet func() []byte) *dashProxy {
	t.Helper()
	target, err := url.Parse(trackerURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &dashProxy{results: make(chan dashResult, 16), fleet: fleet, served: map[int64]*fleetDoc{}}
	fwd := httputil.NewSingleHostReverseProxy(target)
	mux := http.NewServeMux()
	mux.Handle("/", fwd)
	mux.HandleFunc("GET /api/fleet", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, fleetRequest{url: r.URL.String(), auth: r.Header.Get("Authorization")})
		p.mu.Unlock()
		status, body := http.StatusOK, []byte(nil)
		var whole *fleetDoc // the whole history as of this answer, for the test's own figures
		switch {
		case p.fleet == nil:
			status, body = forwardFleet(trackerURL, r.URL.RequestURI(), r.Header.Get("Authorization"))
			// After its first load the page asks only for the latest
			// buckets: the test takes the whole history too, and keeps it
			// when it is of the same bucket (the page draws complete
			// buckets only, which then are the same).
			var part, all fleetDoc
			if st, b := forwardFleet(trackerURL, "/api/fleet", r.Header.Get("Authorization")); status == http.StatusOK && st == http.StatusOK &&
				json.Unmarshal(body, &part) == nil && json.Unmarshal(b, &all) == nil && part.BucketS > 0 && all.Now/part.BucketS == part.Now/part.BucketS {
				all.Now = part.Now
				whole = &all
			}
		case r.Header.Get("Authorization") != "Bearer "+e2eAdminToken:
			status, body = http.StatusUnauthorized, []byte(`{"error":"missing or wrong admin token"}`)
		default:
			body = p.fleet()
			whole = new(fleetDoc)
			if err := json.Unmarshal(body, whole); err != nil {
				whole = nil
			}
		}
		if whole != nil {
			p.mu.Lock()
			if len(p.served) < 1000 {
				p.served[whole.Now] = whole
			}
			p.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	})
	mux.HandleFunc("POST "+dashReportPath, func(w http.ResponseWriter, r *http.Request) {
		var res dashResult
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&res); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case p.results <- res:
		default: // the test reads the latest few; older ones may go
		}
		w.WriteHeader(http.StatusNoContent)
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

// forwardFleet asks the tracker for uri with the Authorization auth.
func forwardFleet(trackerURL, uri, auth string) (int, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, trackerURL+uri, nil)
	if err != nil {
		return http.StatusBadGateway, []byte(`{"error":"` + err.Error() + `"}`)
	}
	req.Header.Set("Authorization", auth)
	resp, err := fxClient.Do(req)
	if err != nil {
		return http.StatusBadGateway, []byte(`{"error":"tracker: ` + err.Error() + `"}`)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, b
}

// servedAt is the whole history as of the /api/fleet answer the proxy
// served whose "now" was now (nil when it has none).
func (p *dashProxy) servedAt(now int64) *fleetDoc {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served[now]
}

func (p *dashProxy) fleetRequests() []fleetRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// chromiumArgs are the flags every headless run here uses: normal web
// security, no sandbox (tests run as root), shared memory in /tmp, none of
// Chromium's own traffic, and a fixed window for the screenshot.
func chromiumArgs(t *testing.T) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
		"--disable-background-networking", "--disable-component-update", "--no-pings",
		"--hide-scrollbars", "--window-size=1400,1800", "--force-device-scale-factor=1",
		"--user-data-dir=" + t.TempDir()}
}

// watchDashboard opens pageURL in headless Chromium and returns the first
// report that done accepts, or the last one when none does within the
// deadline. Chromium is killed on return.
func watchDashboard(t *testing.T, pageURL string, results <-chan dashResult, deadline time.Duration, done func(dashResult) (bool, string)) dashResult {
	t.Helper()
	log := &fxLog{}
	cmd := exec.Command(chromium(t), append(chromiumArgs(t), pageURL)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its helpers die with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}()
	var last dashResult
	var got bool
	why := "no report from the page"
	end := time.After(deadline)
	for {
		select {
		case res := <-results:
			last, got = res, true
			var ok bool
			if ok, why = done(res); ok {
				return res
			}
		case err := <-exited:
			exited <- err
			t.Fatalf("chromium exited before the page drew the fleet (%v):\n%s", err, log.tail(8<<10))
		case <-end:
			if !got {
				t.Fatalf("no report from the dashboard within %v:\n%s", deadline, log.tail(8<<10))
			}
			t.Errorf("the dashboard did not draw what was expected within %v: %s", deadline, why)
			return last
		}
	}
}

// screenshot saves a PNG of pageURL as Chromium draws it after the page's
// scripts have run and fetched, to the test's temp dir and to
// $SHOAL_DASHBOARD_SHOT when set; it logs where.
func screenshot(t *testing.T, pageURL string) {
	t.Helper()
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	// Virtual time lets the page's fetch and first drawing finish before
	// the shot, however loaded the machine: it waits for the network.
	args := append(chromiumArgs(t), "--screenshot="+shot, "--virtual-time-budget=8000", pageURL)
	cmd := exec.Command(chromium(t), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	b, err := os.ReadFile(shot)
	if err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Fatalf("chromium wrote no PNG to %s (%v):\n%s", shot, err, out)
	}
	t.Logf("DASHBOARD screenshot: %s (%d bytes)", shot, len(b))
	if p := os.Getenv("SHOAL_DASHBOARD_SHOT"); p != "" {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatalf("SHOAL_DASHBOARD_SHOT: %v", err)
		}
		t.Logf("DASHBOARD screenshot also at %s", p)
	}
}

// TestDashboardDrawsFleet: the tracker serves the dashboard under its
// Content-Security-Policy; in Chromium the page fetches the fleet with the
// admin token as a bearer header (never in a URL), lists every region and
// cohort in its selectors, draws each of the six charts and both A/B
// charts with points and pixels of their colours and the alert thresholds,
// and its latest figures equal those computed here from the same data.
// The data is fixed (half an hour of five label sets, two cohorts, the
// thresholds crossed now and then), so every figure is known.
func TestDashboardDrawsFleet(t *testing.T) {
	chromium(t)
	r := newFxRig(t)
	r.startTracker()
	checkDashboardServed(t, r.trackerURL)

	fx := newFleetFixture(time.Now())
	body, err := json.Marshal(fx)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newDashProxy(t, r.trackerURL, func() []byte { return body })
	pageURL := proxy.URL + dashPage(true)
	res := watchDashboard(t, pageURL, proxy.results, fxDeadline, func(res dashResult) (bool, string) {
		return dashDrawn(res, fx)
	})
	checkDashboard(t, res, proxy)
	screenshot(t, pageURL)
}

// TestDashboardLiveSwarm: the dashboard draws live data from a running
// swarm: a real tracker, origin and four peers in two regions, of several
// device classes and networks, reporting telemetry every second while
// they fetch a file from each other and play HLS through their gateways.
// The page, opened on the tracker, draws every chart, and its latest
// figures are those of the /api/fleet answer it drew.
func TestDashboardLiveSwarm(t *testing.T) {
	chromium(t)
	k := newKSRig(t) // an operator key, and a tracker that takes its policies
	r := k.fxRig
	hlsDir := filepath.Join(r.dir, "hls")
	mediatest.HLS(t, hlsDir, mediatest.TS)
	hlsID := r.publishMediaDir("hls", hlsDir)
	c := r.publish("file", fxFile{"blob.bin", 8 << 20, 1401})
	r.startOrigin()
	k.startTracker()
	checkDashboardServed(t, r.trackerURL)

	peers := []*fxPeer{}
	for _, p := range []struct{ name, region, device, network string }{
		{"seed", "eu-west", "server", "AS3320"},
		{"viewer-eu", "eu-west", "desktop", "AS3320"},
		{"viewer-us", "us-east", "tv", "AS7922"},
		{"mobile-us", "us-east", "mobile", "AS7922"},
	} {
		peers = append(peers, r.startPeer(p.name, "--telemetry-interval", "1s",
			"--region", p.region, "--device-class", p.device, "--network-label", p.network,
			"--operator-key", k.opPub, "--metered", "no", "--on-battery", "no"))
	}
	// An A/B experiment: the operator's policy splits the peers into a P2P
	// cohort and a cohort with P2P off. Cohorts hash the peer IDs, which
	// are new each run, so the experiment's name is picked to put the seed
	// and a viewer in the P2P cohort and two viewers in the other: the
	// dashboard then shows both groups from real telemetry.
	ids := make([]string, len(peers))
	for i, p := range peers {
		ids[i] = p.status(t).Peer
	}
	exp := abExperiment(t, ids)
	k.pushDoc(1, `{"experiments":[{"name":"`+exp+`","variants":[{"name":"p2p","percent":50},{"name":"cdn","percent":50}]}],`+
		`"rules":[{"match":{"cohort":"`+exp+`/cdn"},"p2p":"off"}]}`)
	waitFor(t, "every peer holds the policy", fxDeadline, func() (bool, string) {
		for _, p := range peers {
			if st := p.status(t).Policy; st.Serial != 1 {
				return false, fmt.Sprintf("%s holds policy %d", p.name, st.Serial)
			}
		}
		return true, ""
	})
	// The seed fetches the file from the origin; the others then get it
	// from the swarm and each plays the HLS through its own gateway.
	wantWhole(t, "seed GET", fxDo(t, http.MethodGet, peers[0].gw+"/c/"+c.id+"/blob.bin"), c.files["blob.bin"])
	peers[0].waitComplete(t, c.id)
	var wg sync.WaitGroup
	errs := make(chan error, len(peers))
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i > 0 {
				if res := fxDo(t, http.MethodGet, p.gw+"/c/"+c.id+"/blob.bin"); res.err != nil || res.status != 200 || res.n != 8<<20 {
					errs <- fmt.Errorf("%s GET blob.bin: %v %d, %d bytes", p.name, res.err, res.status, res.n)
					return
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), fxDeadline)
			defer cancel()
			if _, err := player.Play(ctx, player.Config{URL: p.gw + "/c/" + hlsID + "/index.m3u8", Speed: 2, PlaybackID: p.name}); err != nil {
				errs <- fmt.Errorf("%s playing: %w", p.name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	proxy := newDashProxy(t, r.trackerURL, nil)
	res := watchDashboard(t, proxy.URL+dashPage(true), proxy.results, 3*fxDeadline, func(res dashResult) (bool, string) {
		doc := proxy.servedAt(res.Now)
		if doc == nil {
			return false, fmt.Sprintf("the page drew data of %d, which the proxy never served", res.Now)
		}
		// A minute of reports first, so the screenshot shows a history.
		for _, l := range res.Charts {
			if l.Chart == "peers" && l.Points < 6 {
				return false, "under a minute of reports: " + l.String()
			}
		}
		return dashDrawn(res, doc)
	})
	checkDashboard(t, res, proxy)
	// The live data carries what the swarm did: both regions, every
	// device class, bytes from peers.
	doc := proxy.servedAt(res.Now)
	if doc == nil {
		t.Fatalf("the page drew data of %d, which the proxy never served", res.Now)
	}
	if got := doc.values("region"); !slices.Equal(got, []string{"eu-west", "us-east"}) {
		t.Errorf("regions in /api/fleet: %q", got)
	}
	if got := doc.values("device"); !slices.Equal(got, []string{"desktop", "mobile", "server", "tv"}) {
		t.Errorf("device classes in /api/fleet: %q", got)
	}
	if w := doc.latest(); w["peers"] != 4 {
		t.Errorf("/api/fleet's latest minute: %v, want 4 peers", w)
	}
	// Both cohorts, from the peers' own reports over the whole history (the
	// transfers may be over a minute old): the P2P cohort took bytes from
	// peers, the other none.
	if got := doc.values("cohort"); !slices.Equal(got, []string{exp + "/cdn", exp + "/p2p"}) {
		t.Errorf("cohorts in /api/fleet: %q", got)
	}
	fromPeers := map[string]float64{}
	for _, s := range doc.Series {
		for _, p := range s.Points {
			fromPeers[s.Labels["cohort"]] += p.FromPeers
		}
	}
	if fromPeers[exp+"/cdn"] != 0 || fromPeers[exp+"/p2p"] == 0 {
		t.Errorf("bytes from peers by cohort: %v; want none in the P2P-off cohort, some in the other", fromPeers)
	}
	// Without the token the tracker refuses the data, and the page says
	// how to give it.
	frag := url.Values{"report": {dashReportPath}, "refresh": {"1"}}
	noToken := watchDashboard(t, proxy.URL+dashboard.Path+"#"+frag.Encode(), proxy.results, fxDeadline, func(res dashResult) (bool, string) {
		return strings.Contains(res.Error, "#token=<admin token>") && strings.Contains(res.Error, "401"), "error shown: " + res.Error
	})
	t.Logf("DASHBOARD without the token: %s", noToken.Error)

	// The screenshot is of the page as the tracker serves it, no proxy.
	screenshot(t, r.trackerURL+dashPage(false))
}

// dashPage is the dashboard's path with the admin token in the fragment
// (and, for the proxy, where to report, refreshing every second).
func dashPage(report bool) string {
	frag := url.Values{"token": {e2eAdminToken}}
	if report {
		frag.Set("report", dashReportPath)
		frag.Set("refresh", "1")
	}
	return dashboard.Path + "#" + frag.Encode()
}

// checkDashboardServed: the tracker itself serves the page, with its
// policy.
func checkDashboardServed(t *testing.T, trackerURL string) {
	t.Helper()
	resp, err := fxClient.Get(trackerURL + dashboard.Path)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != dashboard.CSP || !strings.Contains(string(page), "dashboard.js") {
		t.Fatalf("GET %s%s: %s, CSP %q, %d bytes", trackerURL, dashboard.Path, resp.Status, resp.Header.Get("Content-Security-Policy"), len(page))
	}
}

// checkDashboard checks the page's last report against the data it drew:
// no errors, every chart drawn, the latest figures equal to those computed
// here, the selectors and the A/B panel listing the data's values, and the
// token sent only as a bearer header.
func checkDashboard(t *testing.T, res dashResult, proxy *dashProxy) {
	t.Helper()
	for _, l := range append(res.Charts, res.Cohorts...) {
		t.Logf("DASHBOARD %s", l)
	}
	t.Logf("DASHBOARD %d label sets, %d answers drawn, the last in %.1f ms", res.Series, res.Loads, res.RenderMs)
	if res.Error != "" || len(res.Errors) > 0 {
		t.Errorf("the page reports errors: %q %q", res.Error, res.Errors)
	}
	doc := proxy.servedAt(res.Now)
	if doc == nil {
		t.Fatalf("the page drew data of %d, which the proxy never served", res.Now)
	}
	if ok, why := dashDrawn(res, doc); !ok {
		t.Errorf("not drawn: %s", why)
	}
	want := doc.latest()
	for _, l := range res.Charts {
		w, ok := want[l.Chart]
		if !ok {
			t.Errorf("chart %q is not one of %v", l.Chart, want)
			continue
		}
		if math.IsNaN(w) && l.Last == nil {
			continue // nothing in the last minute: no latest value
		}
		if l.Last == nil || math.Abs(*l.Last-w) > 1e-6*math.Max(1, math.Abs(w)) {
			t.Errorf("chart %s: latest value drawn %s, want %.6g", l.Chart, l, w)
		}
	}
	for _, dim := range []string{"tenant", "region", "network", "device", "cohort"} {
		if got, w := res.Options[dim], doc.values(dim); !slices.Equal(got, w) {
			t.Errorf("selector %s offers %q, want the data's %q", dim, got, w)
		}
	}
	var cohorts []string
	for _, l := range res.Cohorts {
		if l.Chart == "ab-offload" {
			cohorts = append(cohorts, l.Line)
		}
	}
	var wantCohorts []string
	for _, c := range doc.values("cohort") {
		wantCohorts = append(wantCohorts, cmp.Or(c, "(no cohort)"))
	}
	if !slices.Equal(cohorts, wantCohorts) {
		t.Errorf("A/B panel shows cohorts %q, want %q", cohorts, wantCohorts)
	}
	checkFleetRequests(t, proxy.fleetRequests())
	// The page took the token out of its address once read.
	if !strings.Contains(res.Location, "report=") || strings.Contains(res.Location, "token") {
		t.Errorf("the page's address is %q: want the token gone, the rest of the fragment kept", res.Location)
	}
}

// dashDrawn says whether the page has merged updates into its first
// answer, every chart has a line with points and pixels of its colour, every thresholded chart its threshold line, and the A/B
// panel a line per cohort of doc in each of its two charts.
func dashDrawn(res dashResult, doc *fleetDoc) (bool, string) {
	if res.Loads < 3 {
		return false, fmt.Sprintf("%d answers drawn, want 3 (updates merged into the first)", res.Loads)
	}
	if len(res.Charts) != 6 {
		return false, fmt.Sprintf("%d charts reported, want 6 (error %q)", len(res.Charts), res.Error)
	}
	var thr int
	for _, l := range append(res.Charts, res.Cohorts...) {
		if l.Points < 2 || l.Inked < 20 {
			return false, "not drawn: " + l.String()
		}
		if l.Threshold != nil {
			if l.ThresholdInked < 20 {
				return false, "threshold not drawn: " + l.String()
			}
			if !strings.HasPrefix(l.Chart, "ab-") {
				thr++
			}
		}
	}
	if thr != 4 {
		return false, fmt.Sprintf("%d thresholds drawn, want 4", thr)
	}
	if n := 2 * len(doc.values("cohort")); len(res.Cohorts) != n {
		return false, fmt.Sprintf("A/B panel has %d lines, want %d (2 charts of the data's cohorts)", len(res.Cohorts), n)
	}
	return true, ""
}

// checkFleetRequests: the page asked for its data with the admin token in
// the Authorization header and never in the URL.
func checkFleetRequests(t *testing.T, reqs []fleetRequest) {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("the page never asked for /api/fleet")
	}
	for _, q := range reqs {
		if q.auth != "Bearer "+e2eAdminToken {
			t.Errorf("GET %s carried Authorization %q, want the admin token as a bearer", q.url, q.auth)
		}
		if strings.Contains(q.url, e2eAdminToken) || strings.Contains(strings.ToLower(q.url), "token") {
			t.Errorf("GET %s: the token is in the URL", q.url)
		}
	}
}

// ---- a fleet of fixed, seeded data in /api/fleet's schema ----

// fleetDoc is GET /api/fleet's body.
type fleetDoc struct {
	Now             int64              `json:"now"`
	BucketS         int64              `json:"bucket_s"`
	StartupBucketsS []float64          `json:"startup_buckets_s"`
	Thresholds      map[string]float64 `json:"thresholds"`
	Series          []fleetSeries      `json:"series"`
}

type fleetSeries struct {
	Labels map[string]string `json:"labels"`
	Points []fleetPoint      `json:"points"`
}

type fleetPoint struct {
	T          int64     `json:"t"`
	FromPeers  float64   `json:"from_peers"`
	FromOrigin float64   `json:"from_origin"`
	Uploaded   float64   `json:"uploaded"`
	Startups   []float64 `json:"startups"`
	Stalls     float64   `json:"stalls"`
	StallS     float64   `json:"stall_s"`
	WatchS     float64   `json:"watch_s"`
	Peers      float64   `json:"peers"`
	Chunks     float64   `json:"chunks"`
	RareChunks float64   `json:"rare_chunks"`
}

// newFleetFixture is half an hour of five label sets, two cohorts, some
// reporting every bucket and some every third, as peers on a 30 s
// interval do.
func newFleetFixture(now time.Time) *fleetDoc {
	const b = 10
	end := now.Unix() / b * b
	doc := fleetDoc{Now: now.Unix(), BucketS: b, StartupBucketsS: []float64{0.25, 0.5, 1, 2, 4, 8},
		Thresholds: map[string]float64{"offload_min": 0.5, "startup_p95_max_s": 4, "rebuffer_s_per_hour_max": 30, "scarcity_max": 0.2}}
	sets := []struct {
		region, network, device, cohort string
		peers                           float64
		p2p                             bool
		every                           int64 // report every n buckets
	}{
		{"eu-west", "AS3320", "desktop", "rollout/p2p", 12, true, 1},
		{"eu-west", "AS3320", "mobile", "rollout/cdn", 8, false, 1},
		{"us-east", "AS7922", "tv", "rollout/p2p", 6, true, 3},
		{"us-east", "AS7922", "desktop", "rollout/cdn", 5, false, 3},
		{"eu-west", "AS3209", "mobile", "rollout/p2p", 4, true, 1},
	}
	for si, s := range sets {
		fs := fleetSeries{Labels: map[string]string{"tenant": "acme", "region": s.region, "network": s.network, "device": s.device, "cohort": s.cohort}}
		for k := int64(180); k >= 0; k-- {
			t := end - k*b
			if (t/b)%s.every != 0 {
				continue
			}
			// Smooth waves, different per set, so lines are told apart.
			ph := float64(k)/20 + float64(si)
			wave := 0.5 + 0.5*math.Sin(ph)
			bytes := s.peers * float64(s.every) * b * (2e6 + 1e6*wave)
			p := fleetPoint{T: t, Peers: s.peers, Chunks: 400 * s.peers, WatchS: s.peers * float64(s.every) * b}
			share := 0.0
			if s.p2p {
				share = 0.55 + 0.35*math.Sin(ph/2) // dips under the 50 % threshold now and then
			}
			p.FromPeers = bytes * share
			p.FromOrigin = bytes - p.FromPeers
			p.Uploaded = p.FromPeers
			p.RareChunks = p.Chunks * (0.05 + 0.2*wave)
			p.Startups = []float64{float64(si % 3), 2, 3 + float64(k%4), 1 + float64(k%3), float64(si % 2), float64(k % 5 / 4), 0}
			p.Stalls = float64(k % 7 / 6)
			p.StallS = p.Stalls * (0.5 + wave)
			fs.Points = append(fs.Points, p)
		}
		doc.Series = append(doc.Series, fs)
	}
	return &doc
}

// values is the sorted distinct values of one label.
func (d *fleetDoc) values(dim string) []string {
	var vs []string
	for _, s := range d.Series {
		if v := s.Labels[dim]; !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return vs
}

// latest is each chart's latest figure for the page's defaults (every
// label set, the last hour, one-minute windows ending with each complete
// bucket): the figure of the newest window that has one, NaN when none
// has. Computed here from the dashboard's documented definitions.
func (d *fleetDoc) latest() map[string]float64 {
	b := d.BucketS
	end := d.Now/b*b - b // the bucket in progress is not drawn
	start := end - 3600 + b
	first := int64(math.MaxInt64)
	for _, s := range d.Series {
		for _, p := range s.Points {
			if p.T >= start {
				first = min(first, p.T)
			}
		}
	}
	start = max(start, first/b*b)
	out := map[string]float64{}
	for _, k := range []string{"offload", "egress", "startup", "rebuffer", "scarcity", "peers"} {
		out[k] = math.NaN()
	}
	for t := end; t >= start; t -= b {
		from := max(start, t-60+b)
		var fp, fo, stallS, watchS, chunks, rare, peers, starts float64
		var has bool
		hist := make([]float64, len(d.StartupBucketsS)+1)
		for _, s := range d.Series {
			maxPeers := -1.0
			for _, p := range s.Points {
				if p.T/b*b < from || p.T/b*b > t {
					continue
				}
				has = true
				fp += p.FromPeers
				fo += p.FromOrigin
				stallS += p.StallS
				watchS += p.WatchS
				chunks += p.Chunks
				rare += p.RareChunks
				for i, c := range p.Startups {
					hist[i] += c
					starts += c
				}
				maxPeers = max(maxPeers, p.Peers)
			}
			if maxPeers >= 0 {
				peers += maxPeers
			}
		}
		set := func(k string, ok bool, v float64) {
			if ok && math.IsNaN(out[k]) {
				out[k] = v
			}
		}
		set("offload", has && fp+fo > 0, fp/(fp+fo))
		set("egress", has, fo/float64(t-from+b))
		set("startup", has && starts > 0, histQuantile(0.95, hist, d.StartupBucketsS))
		set("rebuffer", has && watchS > 0, stallS/watchS*3600)
		set("scarcity", has && chunks > 0, rare/chunks)
		set("peers", has, peers)
	}
	return out
}

// histQuantile interpolates the q-quantile within its bucket of a
// histogram of counts per bound (the last count above every bound).
func histQuantile(q float64, counts, bounds []float64) float64 {
	var total float64
	for _, c := range counts {
		total += c
	}
	rank := q * total
	var cum float64
	for i, c := range counts {
		if c > 0 && cum+c >= rank {
			if i == len(bounds) {
				return bounds[len(bounds)-1]
			}
			lo := 0.0
			if i > 0 {
				lo = bounds[i-1]
			}
			return lo + (bounds[i]-lo)*(rank-cum)/c
		}
		cum += c
	}
	return bounds[len(bounds)-1]
}

// abExperiment picks an experiment name that, split 50/50 into "p2p" and
// "cdn", puts ids[0] (the seed) and ids[1] in p2p and ids[2], ids[3] in
// cdn.
func abExperiment(t *testing.T, ids []string) string {
	t.Helper()
	pol := control.Policy{Experiments: []control.Experiment{{Variants: []control.Variant{{Name: "p2p", Percent: 50}, {Name: "cdn", Percent: 50}}}}}
	want := []string{"p2p", "p2p", "cdn", "cdn"}
	for n := range 10000 {
		pol.Experiments[0].Name = fmt.Sprintf("ab-%d", n)
		ok := true
		for i, id := range ids {
			if pol.Cohorts(id)[pol.Experiments[0].Name] != want[i] {
				ok = false
				break
			}
		}
		if ok {
			return pol.Experiments[0].Name
		}
	}
	t.Fatalf("no experiment name of 10000 splits %v as %v", ids, want)
	return ""
}
