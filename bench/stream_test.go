package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/control"
	"github.com/shoal-cdn/shoal/manifest"
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
	// Each viewer's peer asks the origin for the channel's update once on
	// joining, then at most once per target duration.
	if p := res.P2P; p.UpdateRequests <= 0 || p.UpdateSegments <= 0 || float64(p.UpdateRequests) > p.PeerSegments+float64(len(p.Sessions)) {
		t.Errorf("p2p: %d update requests over %d segments and %.1f peer-segments of %d sessions; want at most one per peer-segment plus one per session",
			p.UpdateRequests, p.UpdateSegments, p.PeerSegments, len(p.Sessions))
	}
	var out bytes.Buffer
	res.WriteReport(&out)
	for _, want := range []string{"P2P (Shoal)", "CDN only", "start-up P95", "result stream mode=live viewers=3 p2p_startup_p50=", " cdn_offload=0.0000", " p2p_update_requests_per_segment="} {
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
		"short VOD":       func(c *StreamConfig) { c.Mode, c.VODLength = ModeVOD, c.Segment/2 },
		"watch max < min": func(c *StreamConfig) { c.Mode, c.WatchMin, c.WatchMax = ModeVOD, 2*time.Minute, time.Minute },
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

// TestStreamVODReportsEveryViewerWindow runs a tiny VOD through both runs
// and checks what cannot depend on timing: every viewer plays exactly its
// window of the rendition its download cap picks, the lower bound is at
// most the CDN-only origin egress, and the table has both runs.
func TestStreamVODReportsEveryViewerWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("plays a few seconds of VOD twice")
	}
	cfg := StreamConfig{
		Mode: ModeVOD, Viewers: 3, Bitrate: 1e6 / 8, Segment: 2 * time.Second,
		VODLength: 20 * time.Second, WatchMin: 4 * time.Second, WatchMax: 8 * time.Second,
		// 1.2 Mbit/s fits the 625 kbit/s rendition with headroom, not the
		// 1 Mbit/s one.
		PeerUp: 8e6 / 8, PeerDown: 1.2e6 / 8, JoinSpread: time.Second, Seed: 7, Dir: t.TempDir(),
	}
	res, err := RunStream(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ps := plans(&res.Config)
	for _, p := range ps {
		if p.rendition != 1 {
			t.Fatalf("plan picks rendition %d, want 1 (the middle one)", p.rendition)
		}
	}
	for _, run := range []*StreamRun{res.P2P, res.CDN} {
		if run == nil {
			t.Fatal("a run is missing")
		}
		if len(run.Sessions) != 3 || run.Failed != 0 {
			t.Fatalf("%s: %d sessions, %d failed; want 3, 0: %+v", run.Name, len(run.Sessions), run.Failed, run.Sessions)
		}
		for _, s := range run.Sessions {
			p := ps[s.Viewer]
			var want int64
			for q := p.start; q < p.start+int64(p.segments); q++ {
				want += vodSegmentBytes(vodBandwidths(&res.Config)[1], 2*time.Second)
			}
			if s.Media <= 0 || s.Media != want {
				t.Errorf("%s: viewer %d played %d media bytes, want %d (segments %d–%d)", run.Name, s.Viewer, s.Media, want, p.start, p.start+int64(p.segments)-1)
			}
			// Start-up, request by request: both playlists, then the
			// two segments of the start threshold, from the window's
			// first, each timed in order and done before playback began.
			wantSteps := []string{"master.m3u8", "r1/index.m3u8", "r1/" + segmentName(p.start), "r1/" + segmentName(p.start+1)}
			if len(s.Steps) != len(wantSteps) {
				t.Errorf("%s: viewer %d start-up steps %+v, want %v", run.Name, s.Viewer, s.Steps, wantSteps)
			}
			var prev time.Duration
			for k, st := range s.Steps {
				if k < len(wantSteps) && st.Path != wantSteps[k] {
					t.Errorf("%s: viewer %d start-up step %d is %q, want %q", run.Name, s.Viewer, k, st.Path, wantSteps[k])
				}
				if st.Sent < prev || st.First < st.Sent || st.Done < st.First || st.Done > s.Startup || st.Bytes <= 0 {
					t.Errorf("%s: viewer %d start-up step %d %+v out of order (previous done at %v, start-up %v)", run.Name, s.Viewer, k, st, prev, s.Startup)
				}
				prev = st.Done
			}
			if s.Played != time.Duration(p.segments)*cfg.Segment || s.Downloaded <= 0 {
				t.Errorf("%s: viewer %d played %v, downloaded %d; want %v, > 0", run.Name, s.Viewer, s.Played, s.Downloaded, time.Duration(p.segments)*cfg.Segment)
			}
		}
		if run.CPU <= 0 || run.ViewingWall <= 0 || run.CPUCores() <= 0 {
			t.Errorf("%s: CPU %v over %v of viewing: want both measured", run.Name, run.CPU, run.ViewingWall)
		}
		if run.OriginRequests <= 0 || run.ViewerMinutes <= 0 || run.DownloadRatioP50 <= 0 || run.DownloadRatioP50 > run.DownloadRatioMax {
			t.Errorf("%s: %d origin requests, %v viewer-minutes, download ratio P50 %v max %v", run.Name, run.OriginRequests, run.ViewerMinutes, run.DownloadRatioP50, run.DownloadRatioMax)
		}
	}
	if p := res.P2P; p.Chunks <= 0 || p.HaveFrames > p.Haves {
		t.Errorf("p2p: peers held %d chunks and sent %d HAVE frames carrying %d announcements; want chunks, and no more frames than announcements", p.Chunks, p.HaveFrames, p.Haves)
	}
	// What the peers' downloads carried holds every first copy.
	if p := res.P2P; p.FromPeers+p.FromOrigin <= 0 || p.Duplicates() < 0 {
		t.Errorf("p2p: downloaded %d bytes, first copies %d from peers and %d from the origin", p.Downloaded, p.FromPeers, p.FromOrigin)
	}
	// The player downloads only what it plays, plus playlists.
	if res.CDN.DownloadRatioP50 < 1 || res.CDN.Downloaded != res.CDN.PlayerBytes {
		t.Errorf("cdn: download ratio %v, downloaded %d, players %d", res.CDN.DownloadRatioP50, res.CDN.Downloaded, res.CDN.PlayerBytes)
	}
	if res.LowerBound <= 0 || res.LowerBound > res.CDN.OriginBytes || res.WatchedSegments > res.VODSegments || res.VODSegments != 30 {
		t.Errorf("lower bound %d over %d of %d segments; CDN origin egress %d", res.LowerBound, res.WatchedSegments, res.VODSegments, res.CDN.OriginBytes)
	}
	var out bytes.Buffer
	res.WriteReport(&out)
	for _, want := range []string{"P2P (Shoal)", "CDN only", "origin / viewer-minute", "downloaded ÷ played max",
		"lower bound on P2P origin egress", "result stream mode=vod viewers=3 p2p_startup_p50=", " lower_bound_over_cdn=",
		"CPU while watching", " p2p_cpu_cores=", " cdn_cpu_seconds=", "HAVE frames / chunk held", " p2p_have_frames=",
		"start-up, request by request", "  duplicates", " p2p_duplicate_bytes=", "  master playlist", "  media playlist", "  segment 2", "    P95 session"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPickRenditionHighestWithHeadroom(t *testing.T) {
	bws := []int64{1e6, 2.5e6, 4e6}
	for _, c := range []struct {
		down float64 // bytes/s
		want int
	}{
		{0, 2},          // unlimited
		{50e6 / 8, 2},   // the default cap
		{6e6 / 8, 2},    // 4 Mbit/s × 1.5 fits exactly
		{5.9e6 / 8, 1},  // just short of it
		{1.5e6 / 8, 0},  // only the lowest fits
		{0.5e6 / 8, 0},  // nothing fits: the lowest
		{3.75e6 / 8, 1}, // 2.5 Mbit/s × 1.5
	} {
		if got := pickRendition(bws, c.down); got != c.want {
			t.Errorf("down %v Mbit/s: rendition %d, want %d", c.down*8/1e6, got, c.want)
		}
	}
}

func TestVODWindowsStayInsideAndBoundCountsDistinctPairs(t *testing.T) {
	cfg := StreamConfig{
		Mode: ModeVOD, Viewers: 40, Bitrate: 4e6 / 8, Segment: 2 * time.Second, VODLength: 61 * time.Second,
		WatchMin: 4 * time.Second, WatchMax: 9 * time.Second, Seed: 5,
	}
	if err := cfg.fill(); err != nil {
		t.Fatal(err)
	}
	segs := vodSegments(&cfg)
	if len(segs) != 31 || segs[30] != time.Second {
		t.Fatalf("61 s in 2 s segments: %d segments, the last %v; want 31, 1s", len(segs), segs[len(segs)-1])
	}
	ps := plans(&cfg)
	covered := map[int64]bool{}
	for k, p := range ps {
		end := p.start + int64(p.segments)
		if p.start < 0 || end > 31 || p.segments < 1 || p.segments > 5 || (p.segments < 2 && end != 31) || p.rendition != 2 {
			t.Errorf("viewer %d: segments %d–%d of rendition %d", k, p.start, end-1, p.rendition)
		}
		for q := p.start; q < end; q++ {
			covered[q] = true
		}
	}
	if again := plans(&cfg); !slices.Equal(again, ps) {
		t.Error("the same seed draws different windows")
	}
	bound, pairs := vodLowerBound(&cfg, ps)
	var want int64
	for q := range covered {
		want += vodSegmentBytes(4e6, segs[q])
	}
	if pairs != len(covered) || bound != want {
		t.Errorf("bound %d bytes over %d pairs, want %d over %d", bound, pairs, want, len(covered))
	}
}

// TestStreamABSplitsByCohort runs a small VOD A/B run: the tracker's
// operator policy puts about half of the viewers' peers in a cohort with
// P2P off. Every viewer lands in the cohort its peer ID hashes to; the CDN
// cohort's peers take nothing from peers; and the tracker's fleet
// telemetry holds both cohorts (start-ups and watch time from the
// gateways' playbacks), the CDN one with no peer bytes.
func TestStreamABSplitsByCohort(t *testing.T) {
	if testing.Short() {
		t.Skip("plays a few seconds of VOD in real time")
	}
	cfg := StreamConfig{
		Mode: ModeVOD, Viewers: 6, Bitrate: 1e6 / 8, Segment: 2 * time.Second,
		VODLength: 20 * time.Second, WatchMin: 4 * time.Second, WatchMax: 6 * time.Second,
		PeerUp: 8e6 / 8, PeerDown: 50e6 / 8, JoinSpread: time.Second, Seed: 11, Dir: t.TempDir(),
		SkipCDN: true, CohortSplit: 50,
	}
	doc, err := abPolicy(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := control.Decode(doc, manifest.PublicOf(operatorKey(cfg.Seed)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{}
	for k := range cfg.Viewers {
		want[k] = ABExperiment + "/" + pol.Cohorts(fmt.Sprintf("viewer-%02d-0", k))[ABExperiment]
	}
	if !slices.Contains(slices.Collect(maps.Values(want)), abCohortP2P) || !slices.Contains(slices.Collect(maps.Values(want)), abCohortCDN) {
		t.Fatalf("the seed puts every viewer in one cohort (%v): pick another", want)
	}
	res, err := RunStream(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	run := res.P2P
	if run == nil || len(run.Sessions) != cfg.Viewers || run.Failed != 0 {
		t.Fatalf("p2p run: %+v", run)
	}
	for _, s := range run.Sessions {
		if s.Cohort != want[s.Viewer] {
			t.Errorf("viewer %d in cohort %q, its peer ID hashes to %q", s.Viewer, s.Cohort, want[s.Viewer])
		}
		if s.Cohort == abCohortCDN && s.FromPeers != 0 {
			t.Errorf("viewer %d of the CDN cohort: its peer took %d bytes from peers with P2P off", s.Viewer, s.FromPeers)
		}
		if s.FromOrigin <= 0 {
			t.Errorf("viewer %d: nothing from the origin", s.Viewer)
		}
	}
	if len(run.Cohorts) != 2 || run.FleetErr != "" {
		t.Fatalf("cohorts %+v, fleet error %q", run.Cohorts, run.FleetErr)
	}
	for _, c := range run.Cohorts {
		f := c.Fleet
		if f.Reports == 0 || f.FromOrigin <= 0 || f.Startups <= 0 || f.WatchS <= 0 {
			t.Errorf("%s: fleet telemetry %+v: want reports, origin bytes, start-ups and watch time", c.Cohort, f)
		}
		if c.Cohort == abCohortCDN && f.FromPeers != 0 {
			t.Errorf("CDN cohort: the fleet counts %d bytes from peers", f.FromPeers)
		}
		if f.Startups > int64(len(c.Run.Sessions)) {
			t.Errorf("%s: %d start-ups reported for %d sessions", c.Cohort, f.Startups, len(c.Run.Sessions))
		}
	}
	var out bytes.Buffer
	res.WriteReport(&out)
	for _, w := range []string{"A/B by cohort", "P2P cohort", "CDN cohort", "fleet telemetry: points"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("report lacks %q:\n%s", w, out.String())
		}
	}
}

func TestHistQuantile(t *testing.T) {
	bounds := []float64{0.25, 0.5, 1, 2, 4, 8}
	cases := []struct {
		counts []int64
		q      float64
		want   time.Duration
	}{
		{nil, 0.95, 0},
		{[]int64{0, 10}, 0.5, 375 * time.Millisecond},         // halfway through (0.25, 0.5]
		{[]int64{0, 0, 0, 0, 0, 0, 4}, 0.95, 8 * time.Second}, // +Inf: the last bound
		{[]int64{19, 0, 1}, 0.95, 250 * time.Millisecond},     // rank 19 is the first bucket's last
		{[]int64{18, 0, 2}, 0.95, 750 * time.Millisecond},     // rank 19: halfway through (0.5, 1]
	}
	for _, c := range cases {
		if got := histQuantile(bounds, c.counts, c.q); got != c.want {
			t.Errorf("%v q%v: %v, want %v", c.counts, c.q, got, c.want)
		}
	}
}

// TestStepStatsSplitsEachRequest checks the start-up breakdown: each step's
// wait counts from the previous step's end, its body from its headers;
// steps are named by what they fetched; the slow session is the P95 one.
func TestStepStatsSplitsEachRequest(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	session := func(startup, master, playlist, seg int) Session {
		// master: headers at master, body 1 ms; playlist likewise;
		// one segment: headers 2 ms after, body seg ms.
		m := ms(master)
		p := m + ms(1) + ms(playlist)
		g := p + ms(1) + ms(2)
		return Session{Startup: ms(startup), Steps: []StartupStep{
			{Path: "master.m3u8", Sent: 0, First: m, Done: m + ms(1)},
			{Path: "r0/index.m3u8", Sent: m + ms(1), First: p, Done: p + ms(1)},
			{Path: "r0/seg-000007.ts", Sent: p + ms(1), First: g, Done: g + ms(seg)},
		}}
	}
	var sessions []Session
	for k := range 20 {
		sessions = append(sessions, session(100+k, 10+k, 5, 50+k))
	}
	sessions = append(sessions, Session{Err: "failed", Steps: []StartupStep{{Path: "master.m3u8", First: ms(9999), Done: ms(9999)}}})
	st := stepStats(sessions)
	if len(st) != 3 {
		t.Fatalf("%d steps, want 3: %+v", len(st), st)
	}
	for k, want := range []string{"master playlist", "media playlist", "segment 1"} {
		if st[k].Kind != want {
			t.Errorf("step %d named %q, want %q", k, st[k].Kind, want)
		}
	}
	// Nearest rank over 20: P50 is the 10th, P95 the 19th.
	if st[0].WaitP50 != ms(19) || st[0].WaitP95 != ms(28) || st[0].BodyP95 != ms(1) {
		t.Errorf("master: %+v, want waits 19 / 28 ms, body 1 ms (the failed session left out)", st[0])
	}
	if st[1].WaitP50 != ms(5) || st[1].WaitP95 != ms(5) {
		t.Errorf("media playlist: %+v, want 5 ms from the master's end", st[1])
	}
	if st[2].WaitP50 != ms(2) || st[2].BodyP50 != ms(59) || st[2].BodyP95 != ms(68) {
		t.Errorf("segment: %+v, want wait 2 ms, body 59 / 68 ms", st[2])
	}
	// The P95 start-up session is the 19th fastest: master 28 ms, segment 68.
	if !st[0].haveSlow || st[0].SlowWait != ms(28) || st[2].SlowBody != ms(68) {
		t.Errorf("slow session: master %v, segment body %v; want 28 and 68 ms", st[0].SlowWait, st[2].SlowBody)
	}
	var out bytes.Buffer
	writeSteps(&out, []*StreamRun{{Name: "p2p", Sessions: sessions}, nil})
	for _, want := range []string{"  master playlist", "19+1 / 28+1", "2+59 / 2+68", "    P95 session", "28+1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("breakdown lacks %q:\n%s", want, out.String())
		}
	}
}
