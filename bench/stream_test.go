package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestStreamBothRunsReportEveryViewer runs a tiny live stream through both
// runs and checks the reports are consistent; no timing is asserted.
func TestStreamBothRunsReportEveryViewer(t *testing.T) {
	if testing.Short() {
		t.Skip("plays a 4 s stream twice in real time")
	}
	cfg := StreamConfig{
		Viewers: 3, Bitrate: 1e6 / 8, Segment: time.Second, Duration: 4 * time.Second,
		PeerUp: 8e6 / 8, PeerDown: 50e6 / 8, JoinSpread: time.Second, Churn: 0.34, Seed: 7, Dir: t.TempDir(),
	}
	res, err := RunStream(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.StreamBytes != 4*125000 {
		t.Errorf("stream bytes %d, want %d", res.StreamBytes, 4*125000)
	}
	for _, run := range []*StreamRun{res.P2P, res.CDN} {
		if run == nil {
			t.Fatal("a run is missing")
		}
		// One churning viewer plays two sessions.
		if len(run.Sessions) != 4 || run.Failed != 0 {
			t.Errorf("%s: %d sessions, %d failed; want 4, 0: %+v", run.Name, len(run.Sessions), run.Failed, run.Sessions)
		}
		seen := map[int]bool{}
		var played time.Duration
		for _, s := range run.Sessions {
			seen[s.Viewer] = true
			played += s.Played
			if s.Startup <= 0 || s.Bytes <= 0 {
				t.Errorf("%s: viewer %d: start-up %v, %d bytes", run.Name, s.Viewer, s.Startup, s.Bytes)
			}
		}
		if len(seen) != 3 {
			t.Errorf("%s: sessions of %d viewers, want 3", run.Name, len(seen))
		}
		// Every viewer watches the whole duration, split or not.
		if played != 3*cfg.Duration {
			t.Errorf("%s: %v played in all, want %v", run.Name, played, 3*cfg.Duration)
		}
		if run.Offload < 0 || run.Offload > 1 || run.RebufferRatio < 0 || run.RebufferRatio > 1 {
			t.Errorf("%s: offload %v, rebuffer ratio %v out of [0,1]", run.Name, run.Offload, run.RebufferRatio)
		}
		if run.StartupP50 > run.StartupP95 || run.OriginBytes <= 0 || run.PlayerBytes < res.StreamBytes*3 {
			t.Errorf("%s: P50 %v P95 %v, origin %d, players %d", run.Name, run.StartupP50, run.StartupP95, run.OriginBytes, run.PlayerBytes)
		}
	}
	// Without Shoal every viewer's byte leaves the origin.
	if res.CDN.Offload != 0 || res.CDN.OriginBytes < res.CDN.PlayerBytes {
		t.Errorf("cdn: offload %v, origin %d < players %d", res.CDN.Offload, res.CDN.OriginBytes, res.CDN.PlayerBytes)
	}
	var out bytes.Buffer
	res.WriteReport(&out)
	for _, want := range []string{"P2P (Shoal)", "CDN only", "start-up P95", "result stream mode=live viewers=3 p2p_startup_p50=", " cdn_offload=0.0000"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStreamConfigRejectsBadValues(t *testing.T) {
	ok := StreamConfig{Viewers: 1, Bitrate: 1000, Segment: time.Second, Duration: time.Second}
	for name, mod := range map[string]func(*StreamConfig){
		"no viewers":      func(c *StreamConfig) { c.Viewers = 0 },
		"no bitrate":      func(c *StreamConfig) { c.Bitrate = 0 },
		"short duration":  func(c *StreamConfig) { c.Duration = c.Segment / 2 },
		"churn above one": func(c *StreamConfig) { c.Churn = 1.5 },
		"unknown mode":    func(c *StreamConfig) { c.Mode = "dvr" },
		"odd chunk size":  func(c *StreamConfig) { c.ChunkSize = 1000 },
		"negative rate":   func(c *StreamConfig) { c.PeerUp = -1 },
	} {
		c := ok
		mod(&c)
		if _, err := RunStream(context.Background(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
}

func TestPlansSpreadJoinsAndPickChurners(t *testing.T) {
	cfg := StreamConfig{Viewers: 5, JoinSpread: 8 * time.Second, Churn: 0.4, Segment: time.Second, Duration: 10 * time.Second, Seed: 3}
	ps := plans(&cfg)
	churn := 0
	for k, p := range ps {
		if want := 2 * time.Second * time.Duration(k); p.joinAt != want {
			t.Errorf("viewer %d joins at %v, want %v", k, p.joinAt, want)
		}
		if p.leaveAfter > 0 {
			churn++
			if p.leaveAfter < 3 || p.leaveAfter > 7 {
				t.Errorf("viewer %d leaves after %v, want mid-stream", k, p.leaveAfter)
			}
		}
	}
	if churn != 2 {
		t.Errorf("%d churners, want 2", churn)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 5}, {0.95, 10}, {0.1, 1}, {1, 10}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("P%v = %v, want %v", c.p*100, got, c.want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}
