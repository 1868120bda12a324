//go:build e2e

// End-to-end tests of bounded live following with real processes: a
// `shoal origin`, `shoal live` fed by a synthetic encoder, and a `shoal
// peer` whose gateway is asked for channels. They guard that made-up
// channel IDs cost the origin one request each and leave nothing running,
// that a watched channel is polled about once per target duration, and
// that a channel nobody watches any more is dropped: no follower, no swarm,
// no origin traffic. Origin traffic is read from the origin's own /metrics.
//
// Each test logs a line "FIGURE <case>: …" with its figures. Every wait
// polls with an overall deadline; the only fixed waits are the quiet
// windows over which "no origin traffic" is asserted.
package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/manifest"
)

// originKind reads shoal_origin_requests_by_kind_total{kind="…"}.
func (r *fxRig) originKind(kind string) int64 {
	t := r.t
	t.Helper()
	resp, err := fxClient.Get(r.originURL + "/metrics")
	if err != nil {
		t.Fatalf("origin metrics: %v", err)
	}
	defer resp.Body.Close()
	prefix := `shoal_origin_requests_by_kind_total{kind="` + kind + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("origin metrics: %q: %v", sc.Text(), err)
			}
			return int64(n)
		}
	}
	return 0 // no request of that kind yet
}

// quiet asserts that the origin answers no request over d.
func (r *fxRig) quiet(what string, d time.Duration) {
	r.t.Helper()
	before := r.originCounters()
	time.Sleep(d)
	if after := r.originCounters(); after.requests != before.requests {
		r.t.Fatalf("%s: %d origin requests in %v, want none", what, after.requests-before.requests, d)
	}
}

// TestLiveRandomIDsLeaveNoFollower: 100 made-up channel IDs through a peer's
// gateway are answered 404 at the cost of one origin request each, and 10 s
// after the last request the peer follows nothing and the origin sees no
// traffic.
func TestLiveRandomIDsLeaveNoFollower(t *testing.T) {
	r := newFxRig(t)
	if err := os.MkdirAll(r.layout, 0o755); err != nil {
		t.Fatal(err)
	}
	r.startOrigin()
	p := r.startPeer("peer")
	before := r.settle()

	rng := rand.New(rand.NewPCG(9, 9))
	ids := make(chan string, 100)
	for range 100 {
		var id manifest.ChannelID
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		ids <- id.String()
	}
	close(ids)
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for range 8 {
		wg.Go(func() {
			for id := range ids {
				resp := fxDo(t, "GET", p.gw+"/live/"+id+"/index.m3u8")
				if resp.status != http.StatusNotFound {
					errs <- fmt.Sprintf("%s: %d, want 404", id, resp.status)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	last := time.Now()
	o := r.originCounters().sub(before)
	t.Logf("FIGURE random live IDs: origin_requests=%d after 100 IDs", o.requests)
	if o.requests > 100 {
		t.Errorf("100 unknown channels cost the origin %d requests, want at most one each", o.requests)
	}
	time.Sleep(time.Until(last.Add(10 * time.Second)))
	if st := p.status(t); len(st.LiveChannels) != 0 {
		t.Fatalf("10 s after the last request the peer follows %d channels: %+v", len(st.LiveChannels), st.LiveChannels)
	}
	r.quiet("10 s after 100 unknown channels", 3*time.Second)
	t.Logf("FIGURE random live IDs: origin_requests=%d 13 s after the last request", r.originCounters().sub(before).requests)
}

// fxEncoder stands in for a live encoder: every target duration it writes a
// segment of seeded bytes and an HLS playlist listing the newest six.
type fxEncoder struct {
	dir    string
	target time.Duration
}

func (e *fxEncoder) run(ctx context.Context, t *testing.T) {
	const list = 6
	for n := 0; ; n++ {
		name := fmt.Sprintf("seg%d.ts", n)
		if _, err := writeSeeded(filepath.Join(e.dir, name), 40<<10, uint64(n)); err != nil {
			t.Error(err)
			return
		}
		var b strings.Builder
		first := max(0, n+1-list)
		fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n", int(e.target.Seconds()), first)
		for k := first; k <= n; k++ {
			fmt.Fprintf(&b, "#EXTINF:%.3f,\nseg%d.ts\n", e.target.Seconds(), k)
		}
		tmp := filepath.Join(e.dir, "index.m3u8.tmp")
		if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
			return
		}
		if err := os.Rename(tmp, filepath.Join(e.dir, "index.m3u8")); err != nil {
			t.Error(err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.target):
		}
	}
}

// startLiveChannel publishes a live channel "news" into the rig's layout:
// an encoder writing 1 s segments and a `shoal live` following it, both
// stopped with the test. It returns the channel's ID.
func (r *fxRig) startLiveChannel() string {
	t := r.t
	t.Helper()
	watch := filepath.Join(r.dir, "watch")
	for _, d := range []string{r.layout, watch} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stopEncoder := context.WithCancel(context.Background())
	encDone := make(chan struct{})
	go func() { defer close(encDone); (&fxEncoder{dir: watch, target: time.Second}).run(ctx, t) }()
	t.Cleanup(func() { stopEncoder(); <-encDone })
	r.start("live", "live", "--key", r.key, "--watch", watch, "--out", r.layout, "--channel", "news", "--poll", "100ms")
	pub, err := manifest.ParsePublicKey(r.pub)
	if err != nil {
		t.Fatal(err)
	}
	return manifest.ChannelIDOf(pub, "news").String()
}

// TestLiveIdleChannelStopsOriginTraffic: a peer whose viewer watches a live
// channel polls its updates about once per target duration; once the
// viewer has gone for the idle time, the peer follows nothing, holds no
// segment swarm and sends the origin nothing, while the channel goes on.
func TestLiveIdleChannelStopsOriginTraffic(t *testing.T) {
	r := newFxRig(t)
	id := r.startLiveChannel()
	r.startOrigin()
	p := r.startPeer("peer", "--live-idle", "1s")
	ch := p.gw + "/live/" + id + "/"

	// The viewer: the playlist every target duration and its newest
	// segment, for 8 s.
	var polls0 int64
	var start time.Time
	deadline := time.Now().Add(fxDeadline)
	for watched := 0; watched < 8; {
		resp := fxDo(t, "GET", ch+"index.m3u8")
		if resp.status == http.StatusOK {
			if start.IsZero() {
				start, polls0 = time.Now(), r.originKind("channel_update")
			}
			lines := strings.Split(strings.TrimSpace(string(resp.body)), "\n")
			if seg := fxDo(t, "GET", ch+lines[len(lines)-1]); seg.status != http.StatusOK {
				t.Fatalf("segment %s: %d %s", lines[len(lines)-1], seg.status, seg.body)
			}
			watched++
		} else if start.IsZero() && time.Now().After(deadline) {
			t.Fatalf("channel never served: %d %s", resp.status, resp.body)
		}
		time.Sleep(time.Second)
	}
	polls := r.originKind("channel_update") - polls0
	span := time.Since(start)
	t.Logf("FIGURE live watched: channel_update_requests=%d in %v at a 1 s target duration (%.2f per target duration)", polls, span.Round(time.Millisecond), float64(polls)/span.Seconds())
	if limit := int64(span.Seconds()) + 2; polls > limit {
		t.Errorf("%d update polls in %v, want at most one per target duration (%d)", polls, span, limit)
	}
	st := p.status(t)
	if len(st.LiveChannels) != 1 || len(st.Swarms) == 0 {
		t.Fatalf("while watched: %d channels, %d swarms", len(st.LiveChannels), len(st.Swarms))
	}

	// The viewer has left: after the idle time (two target durations) the
	// channel is dropped and its segments' swarms left.
	waitFor(t, "the idle channel dropped", fxDeadline, func() (bool, string) {
		st := p.status(t)
		return len(st.LiveChannels) == 0 && len(st.Swarms) == 0, fmt.Sprintf("%d channels, %d swarms", len(st.LiveChannels), len(st.Swarms))
	})
	r.quiet("a channel nobody watches", 4*time.Second)
	t.Logf("FIGURE live idle: no origin requests over 4 s once the viewer had gone")
}

// TestLiveGossipSparesOriginPolls: several peers (libp2p, a tracker) whose
// viewers watch the same channel learn most updates from each other by
// gossip, so the origin sees fewer update requests per segment than there
// are peers, and never more than one per peer per target duration.
func TestLiveGossipSparesOriginPolls(t *testing.T) {
	const peers = 4
	r := newFxRig(t)
	id := r.startLiveChannel()
	r.startOrigin()
	r.startTracker()
	var gws []string
	for k := range peers {
		gws = append(gws, r.startPeer(fmt.Sprintf("peer%d", k)).gw+"/live/"+id+"/")
	}
	// Viewers: each its peer's playlist every target duration and the
	// newest segment, until stopped.
	vctx, stopViewers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var served sync.Map // gateway → segments served
	for _, gw := range gws {
		wg.Go(func() {
			n := 0
			for vctx.Err() == nil {
				if resp := fxDo(t, "GET", gw+"index.m3u8"); resp.status == http.StatusOK {
					lines := strings.Split(strings.TrimSpace(string(resp.body)), "\n")
					if seg := fxDo(t, "GET", gw+lines[len(lines)-1]); seg.status == http.StatusOK {
						n++
						served.Store(gw, n)
					}
				}
				select {
				case <-vctx.Done():
				case <-time.After(time.Second):
				}
			}
		})
	}
	t.Cleanup(func() { stopViewers(); wg.Wait() })
	waitFor(t, "every viewer playing", fxDeadline, func() (bool, string) {
		k := 0
		served.Range(func(_, v any) bool {
			if v.(int) >= 3 {
				k++
			}
			return true
		})
		return k == peers, fmt.Sprintf("%d of %d viewers have 3 segments", k, peers)
	})
	// Steady state: update requests over 15 target durations.
	before, start := r.originKind("channel_update"), time.Now()
	time.Sleep(15 * time.Second)
	polls, span := r.originKind("channel_update")-before, time.Since(start)
	segments := span.Seconds() // one per second
	t.Logf("FIGURE live gossip: %d peers, channel_update_requests=%d over %.1f segments = %.2f per segment (%.2f per peer per segment)",
		peers, polls, segments, float64(polls)/segments, float64(polls)/segments/peers)
	if max := int64(peers*segments) + peers; polls > max {
		t.Errorf("%d update requests from %d peers over %.1f s, want at most one per peer per target duration (%d)", polls, peers, segments, max)
	}
	if float64(polls)/segments >= peers {
		t.Errorf("%.2f update requests per segment from %d peers: gossip spared the origin nothing", float64(polls)/segments, peers)
	}
}
