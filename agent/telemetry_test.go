package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm"
)

// fakeTelemetryTracker answers each report with the next status of its
// script (202 when it runs out) and records what it received.
type fakeTelemetryTracker struct {
	mu     sync.Mutex
	script []int
	got    []discovery.TelemetryReport // guarded by mu: every report received, answered or not
}

func (f *fakeTelemetryTracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep, err := discovery.DecodeTelemetry(r.Body)
	if err != nil {
		http.Error(w, `{"error":"`+err.Error()+`"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, rep)
	code := http.StatusAccepted
	if len(f.script) > 0 {
		code, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "30")
	}
	w.WriteHeader(code)
	_, _ = w.Write([]byte(`{"error":"scripted"}`))
}

func (f *fakeTelemetryTracker) received() []discovery.TelemetryReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]discovery.TelemetryReport(nil), f.got...)
}

// TestTelemetryCarriesFiguresOverAnOutage: figures of a report that did not
// get through (5xx, or a tracker resting after a 429) go with the next
// one, summed; a report the tracker refuses outright is dropped, and a
// tracker asking for rest is not asked again meanwhile.
func TestTelemetryCarriesFiguresOverAnOutage(t *testing.T) {
	fake := &fakeTelemetryTracker{script: []int{http.StatusServiceUnavailable, http.StatusAccepted, http.StatusForbidden, http.StatusAccepted, http.StatusTooManyRequests}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	h, err := netx.NewMemNetwork().NewHost("")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := NewPeer(ctx, PeerConfig{CacheDir: t.TempDir(), Tracker: srv.URL, Origin: srv.URL, Trust: manifest.NewKeySet(),
		Host: h, TelemetryInterval: -1, Region: "eu", DeviceClass: "tv", NetworkLabel: "AS1",
		TelemetryCohort: func() string { return "exp/b" }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tr, err := discovery.ParseTrackers(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	tel := &telemetry{p: p, trackers: tr, interval: 10 * time.Second, seq: 100, seen: map[*swarm.Session]byteCounts{}}
	play := func(startup time.Duration, watch float64) {
		p.plays.mu.Lock()
		p.plays.totals.startup(startup)
		p.plays.totals.watchS += watch
		p.plays.mu.Unlock()
	}

	play(300*time.Millisecond, 4) // 0.5 s bucket
	tel.send(ctx, false)          // 503: kept
	play(9*time.Second, 2)        // +Inf bucket
	tel.send(ctx, false)          // 202: both
	play(time.Second, 1)          // 1 s bucket
	tel.send(ctx, false)          // 403: dropped
	play(2*time.Second, 8)        // 2 s bucket
	tel.send(ctx, false)          // 202
	play(100*time.Millisecond, 1) // 0.25 s bucket
	tel.send(ctx, false)          // 429, Retry-After 30: kept
	tel.send(ctx, false)          // the tracker rests: not asked, kept

	got := fake.received()
	if len(got) != 5 {
		t.Fatalf("the tracker got %d reports, want 5 (none while it rests)", len(got))
	}
	want := []struct {
		startups []int64
		watch    float64
	}{
		{[]int64{0, 1, 0, 0, 0, 0, 0}, 4},
		{[]int64{0, 1, 0, 0, 0, 0, 1}, 6},
		{[]int64{0, 0, 1, 0, 0, 0, 0}, 1},
		{[]int64{0, 0, 0, 1, 0, 0, 0}, 8},
		{[]int64{1, 0, 0, 0, 0, 0, 0}, 1},
	}
	for i, w := range want {
		r := got[i]
		if r.Seq != int64(101+i) || r.WatchS != w.watch || len(r.Startups) != 7 {
			t.Fatalf("report %d: seq %d, watch %v, startups %v; want seq %d, watch %v, startups %v", i, r.Seq, r.WatchS, r.Startups, 101+i, w.watch, w.startups)
		}
		for k := range w.startups {
			if r.Startups[k] != w.startups[k] {
				t.Fatalf("report %d: startups %v, want %v", i, r.Startups, w.startups)
			}
		}
		if r.Region != "eu" || r.Device != "tv" || r.Network != "AS1" || r.Cohort != "exp/b" || r.Peer != string(h.ID()) || r.IntervalS != 10 {
			t.Fatalf("report %d labels: %+v", i, r)
		}
	}
	if tel.pending.WatchS != 1 || tel.pending.Startups[0] != 1 {
		t.Fatalf("after the 429 and a rest, pending %+v: want the last start-up and 1 s watched kept", tel.pending)
	}
}
