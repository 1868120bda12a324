//go:build e2e

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/media/mediatest"
	"github.com/shoal-cdn/shoal/player"
	"github.com/shoal-cdn/shoal/tracker"
)

// promSum sums the samples of metric name (exactly: not its _bucket or
// _count series unless named so) in a text exposition whose labels include
// every one of want (`device="tv"`).
func promSum(body []byte, name string, want ...string) (sum float64, n int) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		head, val, ok := strings.Cut(line, " ")
		if i := strings.LastIndex(line, "} "); i >= 0 {
			head, val, ok = line[:i+1], line[i+2:], true
		}
		if !ok {
			continue
		}
		matched := true
		for _, w := range want {
			matched = matched && strings.Contains(head, w)
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil && matched {
			sum += v
			n++
		}
	}
	return sum, n
}

// TestFleetTelemetryEndToEnd: three real peers with --telemetry-interval 1s
// (a seed, a downloader, a viewer playing HLS through its gateway) report
// to a real tracker; its /metrics and /api/fleet carry exactly the bytes
// the peers counted, the viewer's start-up and watch time, under each
// peer's region, network and device labels, and pass promtool.
func TestFleetTelemetryEndToEnd(t *testing.T) {
	r := newFxRig(t)
	bulk := r.publish("bulk", fxFile{"app.bin", 6*fxChunk + 123, 1414})
	hlsDir := filepath.Join(r.dir, "hls")
	mediatest.HLS(t, hlsDir, mediatest.TS)
	hlsID := r.publishMediaDir("hls", hlsDir)
	r.startOrigin()
	r.startTracker()
	tel := func(region, network, device string) []string {
		return []string{"--telemetry-interval", "1s", "--region", region, "--network-label", network, "--device-class", device}
	}
	seed := r.startPeer("seed", tel("eu", "AS64500", "server")...)
	leech := r.startPeer("leech", tel("eu", "AS64501", "desktop")...)
	viewer := r.startPeer("viewer", tel("us", "AS64502", "tv")...)

	for _, p := range []*fxPeer{seed, leech} {
		resp := fxDo(t, "GET", p.gw+"/c/"+bulk.id+"/app.bin")
		if resp.err != nil || resp.status != 200 {
			t.Fatalf("%s: GET app.bin: %d %v", p.name, resp.status, resp.err)
		}
		wantWhole(t, p.name+" app.bin", resp, bulk.files["app.bin"])
	}
	ctx, cancel := context.WithTimeout(context.Background(), fxDeadline)
	defer cancel()
	rep, err := player.Play(ctx, player.Config{URL: viewer.gw + "/c/" + hlsID + "/index.m3u8", Speed: 4, PlaybackID: "e2e-telemetry"})
	if err != nil {
		t.Fatalf("viewer playback: %v", err)
	}
	t.Logf("viewer played %v in %d segments", rep.Played, rep.Segments)

	// What each peer counted itself, once the tracker has it all: the
	// reports carry deltas, so the tracker's sums catch up within a few
	// intervals and then equal the peers' own counters.
	type counted struct{ fromPeers, fromOrigin, uploaded float64 }
	own := func(p *fxPeer) counted {
		var c counted
		for _, s := range p.status(t).Swarms {
			c.fromPeers += float64(s.BytesFromPeers)
			c.fromOrigin += float64(s.BytesFromOrigin)
			c.uploaded += float64(s.BytesUploaded)
		}
		return c
	}
	labels := map[*fxPeer][]string{
		seed:   {`region="eu"`, `network="AS64500"`, `device="server"`, `tenant=""`, `cohort=""`},
		leech:  {`region="eu"`, `network="AS64501"`, `device="desktop"`},
		viewer: {`region="us"`, `network="AS64502"`, `device="tv"`},
	}
	var scrape []byte
	waitFor(t, "the tracker's fleet bytes equal the peers' own counters", fxDeadline, func() (bool, string) {
		scrape = fxDo(t, "GET", r.trackerURL+"/metrics").body
		var why []string
		for _, p := range []*fxPeer{seed, leech, viewer} {
			c := own(p)
			fp, n := promSum(scrape, "shoal_fleet_from_peers_bytes_total", labels[p]...)
			fo, _ := promSum(scrape, "shoal_fleet_from_origin_bytes_total", labels[p]...)
			up, _ := promSum(scrape, "shoal_fleet_uploaded_bytes_total", labels[p]...)
			if n != 1 || fp != c.fromPeers || fo != c.fromOrigin || up != c.uploaded {
				why = append(why, fmt.Sprintf("%s: %d series, tracker %v/%v/%v, peer %+v", p.name, n, fp, fo, up, c))
			}
		}
		return len(why) == 0, strings.Join(why, "; ")
	})
	total := float64(bulk.files["app.bin"].size)
	seedC, leechC := own(seed), own(leech)
	if seedC.fromPeers+seedC.fromOrigin != total || leechC.fromPeers+leechC.fromOrigin != total {
		t.Errorf("seed %+v and leech %+v should each have received the %v bytes once", seedC, leechC, total)
	}

	// The viewer's playback: its start-up and watch time, on its labels only.
	var vm []byte
	waitFor(t, "the viewer's start-ups on the tracker", fxDeadline, func() (bool, string) {
		vm = fxDo(t, "GET", viewer.gw+"/metrics").body
		gw, _ := promSum(vm, "shoal_playback_startup_seconds_count")
		got, _ := promSum(fxDo(t, "GET", r.trackerURL+"/metrics").body, "shoal_fleet_startups_count", labels[viewer]...)
		return gw >= 1 && got == gw, fmt.Sprintf("gateway counted %v start-ups, tracker %v", gw, got)
	})
	scrape = fxDo(t, "GET", r.trackerURL+"/metrics").body
	if n, _ := promSum(scrape, "shoal_fleet_startups_count", `device="server"`); n != 0 {
		t.Errorf("the seed played nothing, yet %v start-ups under its labels", n)
	}
	watch, _ := promSum(scrape, "shoal_fleet_watch_seconds_total", labels[viewer]...)
	if media := rep.Played.Seconds(); math.Abs(watch-media) > 2.5 {
		t.Errorf("tracker has %.2f s watched on the viewer's labels; the player played %.2f s", watch, media)
	}
	// Present: reported within two intervals; a report delayed on a loaded
	// machine may drop one for a moment, so poll.
	waitFor(t, "shoal_fleet_peers counts the 3 peers", fxDeadline, func() (bool, string) {
		peers, _ := promSum(fxDo(t, "GET", r.trackerURL+"/metrics").body, "shoal_fleet_peers")
		return peers == 3, fmt.Sprintf("%v peers", peers)
	})
	for _, bad := range []string{bulk.id, hlsID, "127.0.0.1"} {
		if strings.Contains(string(scrape), bad) {
			t.Errorf("the tracker's /metrics names %q: telemetry carries no content IDs or addresses", bad)
		}
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(scrape)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on the tracker's /metrics: %v\n%s", err, out)
		}
	} else {
		t.Logf("promtool not found: /metrics not checked by it: %v", err)
	}

	// The dashboard's API: behind the admin token, the same figures per
	// label set over time.
	if resp := fxDo(t, "GET", r.trackerURL+"/api/fleet"); resp.status != 401 {
		t.Errorf("/api/fleet without the admin token: HTTP %d, want 401", resp.status)
	}
	var fleet tracker.FleetResponse
	getAdminJSON(t, r.trackerURL+"/api/fleet?since="+strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10), &fleet)
	if fleet.BucketS != 10 || len(fleet.StartupBucketsS) != 6 || fleet.Thresholds.StartupP95MaxS != 4 {
		t.Errorf("/api/fleet header: %+v", fleet)
	}
	sums := map[string]float64{}
	var startups int64
	for _, s := range fleet.Series {
		for _, p := range s.Points {
			sums[s.Labels.Device] += float64(p.FromPeers + p.FromOrigin)
			if s.Labels.Device == "tv" {
				for _, c := range p.Startups {
					startups += c
				}
				if s.Labels.Region != "us" || s.Labels.Network != "AS64502" {
					t.Errorf("viewer series labels %+v", s.Labels)
				}
			}
		}
	}
	if sums["server"] != seedC.fromPeers+seedC.fromOrigin || sums["desktop"] != leechC.fromPeers+leechC.fromOrigin {
		t.Errorf("/api/fleet bytes by device %v; the seed counted %+v, the leech %+v", sums, seedC, leechC)
	}
	if gw, _ := promSum(vm, "shoal_playback_startup_seconds_count"); float64(startups) != gw {
		t.Errorf("/api/fleet has %d start-ups for the tv, its gateway counted %v", startups, gw)
	}
}

// TestFleetTelemetryTenantFromToken: on a tracker that requires tokens,
// each peer's telemetry counts under the tenant of its real access token
// (whatever content the token covers), a tenant's /api/fleet history holds
// only its own peers' figures, and a peer without a token is refused.
func TestFleetTelemetryTenantFromToken(t *testing.T) {
	r := newFxRig(t)
	c := r.publish("tenants", fxFile{"clip.bin", 3*fxChunk + 7, 1415})
	r.startOrigin()
	addr := freePort(t)
	r.trackerURL = "http://" + addr
	tp := r.start("tracker", "tracker", "--listen", addr, "--interval", "1s", "--admin-token", e2eAdminToken, "--trust", r.pub)
	r.up("tracker", r.trackerURL+"/metrics", tp)
	issue := func(tenant string) string {
		out, e, code := runBin(t, r.bin, "token", "issue", "--key", r.key, "--tenant", tenant, "--content", c.id)
		if code != 0 {
			t.Fatalf("token issue: exit %d: %s", code, e)
		}
		return strings.TrimSpace(out)
	}
	fast := []string{"--telemetry-interval", "1s", "--device-class", "desktop"}
	a := r.startPeer("tenant-a", append(fast, "--token", issue("tenant-a"))...)
	b := r.startPeer("tenant-b", append(fast, "--token", issue("tenant-b"))...)
	anon := r.startPeer("anonymous", fast...)
	for _, p := range []*fxPeer{a, b, anon} {
		wantWhole(t, p.name+" GET", fxDo(t, "GET", p.gw+"/c/"+c.id+"/clip.bin"), c.files["clip.bin"])
	}
	size := float64(c.files["clip.bin"].size)
	tenantBytes := func(tenant string) (float64, string) {
		var fleet tracker.FleetResponse
		getAdminJSON(t, r.trackerURL+"/api/fleet?tenant="+tenant, &fleet)
		sum := 0.0
		for _, s := range fleet.Series {
			if s.Labels.Tenant != tenant {
				return -1, fmt.Sprintf("?tenant=%s returned a series of tenant %q", tenant, s.Labels.Tenant)
			}
			for _, p := range s.Points {
				sum += float64(p.FromPeers + p.FromOrigin)
			}
		}
		return sum, fmt.Sprintf("%s: %v bytes", tenant, sum)
	}
	waitFor(t, "each tenant's history holds its own peer's bytes", fxDeadline, func() (bool, string) {
		ga, wa := tenantBytes("tenant-a")
		gb, wb := tenantBytes("tenant-b")
		return ga == size && gb == size, wa + "; " + wb + fmt.Sprintf("; want %v each", size)
	})
	for i := 0; i < 3; i++ { // a few more intervals: still exactly one copy each
		time.Sleep(time.Second)
		if ga, wa := tenantBytes("tenant-a"); ga != size {
			t.Fatalf("later: %s, want %v", wa, size)
		}
	}
	waitFor(t, "the anonymous peer's telemetry refused", fxDeadline, func() (bool, string) {
		m := fxDo(t, "GET", r.trackerURL+"/metrics").body
		refused, _ := promSum(m, "shoal_fleet_reports_total", `result="refused"`)
		anonSeries, _ := promSum(m, "shoal_fleet_from_origin_bytes_total", `tenant=""`)
		return refused >= 1 && anonSeries == 0, fmt.Sprintf("%v refused, %v bytes under no tenant", refused, anonSeries)
	})
}
