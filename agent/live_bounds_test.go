package agent

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/manifest"
)

// lockedClock is a manual clock safe for the gateway's goroutines.
type lockedClock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func (c *lockedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *lockedClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var _ core.Clock = (*lockedClock)(nil)

// randomChannels returns n channel IDs nobody publishes, from seed.
func randomChannels(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 1))
	ids := make([]string, n)
	for i := range ids {
		var id manifest.ChannelID
		for j := range id {
			id[j] = byte(r.Uint32())
		}
		ids[i] = id.String()
	}
	return ids
}

// TestLiveUnknownChannelsAre404AndStartNothing: channels the origin does not
// have are answered 404 after one origin request each, follow nothing, and
// are answered from memory (no origin request) until the memory expires.
func TestLiveUnknownChannelsAre404AndStartNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lf := newLiveFixture(t, ctx)
	clock := &lockedClock{t: time.Unix(1e9, 0)}
	lf.peer.live.clock = clock
	base := strings.TrimSuffix(lf.gateway, lf.pub.ID().String()+"/")
	ids := randomChannels(100, 9)
	for round := range 2 {
		for _, id := range ids {
			if code, body, _ := httpGet(t, base+id+"/index.m3u8"); code != http.StatusNotFound || !strings.Contains(body, id) {
				t.Fatalf("round %d: unknown channel %s: %d %q, want 404 naming it", round, id, code, body)
			}
		}
		if n := lf.origin.ChannelUpdateRequests(); n != 100 {
			t.Fatalf("round %d: %d origin requests for 100 unknown channels, want 100 (one each, then remembered)", round, n)
		}
		if st := lf.peer.Status(); len(st.LiveChannels) != 0 {
			t.Fatalf("round %d: unknown channels followed: %+v", round, st.LiveChannels)
		}
	}
	clock.Advance(liveMissingFor + time.Second)
	if code, _, _ := httpGet(t, base+ids[0]+"/x.ts"); code != http.StatusNotFound {
		t.Fatalf("after the memory expired: %d, want 404", code)
	}
	if n := lf.origin.ChannelUpdateRequests(); n != 101 {
		t.Fatalf("after the memory expired: %d origin requests, want 101 (asked again)", n)
	}
}

// TestLiveMissingMemoryIsBounded: remembering refused channels never holds
// more than liveMissingMax of them.
func TestLiveMissingMemoryIsBounded(t *testing.T) {
	lc := &liveChannels{clock: &lockedClock{t: time.Unix(1e9, 0)}, missing: map[manifest.ChannelID]liveMissing{}}
	for i := range 3 * liveMissingMax {
		var id manifest.ChannelID
		id[0], id[1] = byte(i), byte(i>>8)
		lc.rememberLocked(id, liveMissing{until: time.Unix(2e9, 0)})
		if len(lc.missing) > liveMissingMax {
			t.Fatalf("%d channels remembered, at most %d", len(lc.missing), liveMissingMax)
		}
	}
}

// windowHeld reports whether the peer runs a swarm for any segment of u.
func windowHeld(p *Peer, u *manifest.ChannelUpdate) bool {
	for _, s := range p.Sessions() {
		for _, seg := range u.Segments {
			if s.Content().ID == seg.Content {
				return true
			}
		}
	}
	return false
}

// TestLiveIdleChannelIsDropped: once nobody has asked for a channel for its
// idle time, the peer stops polling it and leaves its segments' swarms; a
// later update is neither polled nor fetched.
func TestLiveIdleChannelIsDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lf := newLiveFixtureWith(t, ctx, func(pc *PeerConfig) { pc.LiveIdle = time.Second })
	lf.release(t)
	lf.release(t)
	u, err := lf.pub.Step(ctx)
	if err != nil || u == nil {
		t.Fatalf("publish: %v, %v", u, err)
	}
	if code, _, _ := httpGet(t, lf.gateway+"index.m3u8"); code != http.StatusOK {
		t.Fatalf("playlist: %d", code)
	}
	if code, _, _ := httpGet(t, lf.gateway+u.Segments[0].Name); code != http.StatusOK {
		t.Fatalf("segment: %d", code)
	}
	if st := lf.peer.Status(); len(st.LiveChannels) != 1 || st.LiveChannels[0].Channel != lf.pub.ID().String() || !windowHeld(lf.peer, u) {
		t.Fatalf("watched channel: %+v, window held %v", st.LiveChannels, windowHeld(lf.peer, u))
	}
	// Idle time: max(1 s, two 2 s target durations).
	waitFor(t, "the idle channel to be dropped", func() bool {
		return len(lf.peer.Status().LiveChannels) == 0 && !windowHeld(lf.peer, u)
	})
	lf.release(t)
	next, err := lf.pub.Step(ctx)
	if err != nil || next == nil {
		t.Fatalf("publish: %v, %v", next, err)
	}
	before := lf.origin.Requests()
	time.Sleep(4 * time.Second) // longer than the longest poll interval (1.5 target durations)
	if n := lf.origin.Requests() - before; n != 0 || windowHeld(lf.peer, next) {
		t.Fatalf("dropped channel: %d origin requests since, new window held %v; want none", n, windowHeld(lf.peer, next))
	}
}

// TestLiveRestartedChannelIsPickedUp: a channel that ended (ENDLIST) and is
// started again with the same key and name, even on a wiped origin
// directory, is picked up by a peer still serving it: its playlist goes
// live again and the new segments are served.
func TestLiveRestartedChannelIsPickedUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lf := newLiveFixture(t, ctx)
	for range lf.vod.Segments {
		lf.release(t)
	}
	end, err := lf.pub.Step(ctx)
	if err != nil || end == nil || !end.Ended {
		t.Fatalf("final update: %v, %v", end, err)
	}
	if code, body, _ := httpGet(t, lf.gateway+"index.m3u8"); code != http.StatusOK || !strings.Contains(body, "#EXT-X-ENDLIST") {
		t.Fatalf("ended playlist: %d\n%s", code, body)
	}
	// The publisher restarts on a fresh encoder output, its layout's
	// channel files gone.
	if err := os.RemoveAll(filepath.Join(lf.out, layout.ChannelDir)); err != nil {
		t.Fatal(err)
	}
	lf.watch, lf.released = t.TempDir(), 0
	if lf.pub, err = live.NewPublisher(live.PublisherConfig{Key: lf.key, Channel: "test", Watch: lf.watch, Out: lf.out, Window: 6, ChunkSize: 16 << 10}); err != nil {
		t.Fatal(err)
	}
	lf.release(t)
	restart, err := lf.pub.Step(ctx)
	if err != nil || restart == nil || restart.Ended || restart.Seq <= end.Seq {
		t.Fatalf("restarted channel's update: %+v, %v (ended run's was %d)", restart, err, end.Seq)
	}
	var body string
	waitFor(t, "the restarted channel on the gateway", func() bool {
		var code int
		code, body, _ = httpGet(t, lf.gateway+"index.m3u8")
		return code == http.StatusOK && !strings.Contains(body, "#EXT-X-ENDLIST") && strings.Count(body, "#EXTINF") == 1
	})
	want, _ := os.ReadFile(filepath.Join(lf.watch, restart.Segments[0].Name))
	if code, seg, _ := httpGet(t, lf.gateway+restart.Segments[0].Name); code != http.StatusOK || seg != string(want) {
		t.Fatalf("restarted channel's segment: %d, %d bytes, want %d", code, len(seg), len(want))
	}
}

// TestLiveChannelsAreCapped: with LiveChannels followed, a new channel
// replaces the one unwatched for longest, and is refused (503) while every
// followed channel has a request in progress.
func TestLiveChannelsAreCapped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lf := newLiveFixtureWith(t, ctx, func(pc *PeerConfig) { pc.LiveChannels = 1 })
	other, err := live.NewPublisher(live.PublisherConfig{Key: lf.key, Channel: "other", Watch: lf.watch, Out: lf.out, Window: 6, ChunkSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	lf.release(t)
	for _, p := range []*live.Publisher{lf.pub, other} {
		if u, err := p.Step(ctx); err != nil || u == nil {
			t.Fatalf("publish: %v, %v", u, err)
		}
	}
	otherURL := strings.Replace(lf.gateway, lf.pub.ID().String(), other.ID().String(), 1) + "index.m3u8"
	followed := func() []string {
		var ids []string
		for _, c := range lf.peer.Status().LiveChannels {
			ids = append(ids, c.Channel)
		}
		return ids
	}
	clock := &lockedClock{t: time.Unix(1e9, 0)}
	lf.peer.live.clock = clock
	if code, _, _ := httpGet(t, lf.gateway+"index.m3u8"); code != http.StatusOK {
		t.Fatalf("first channel: %d", code)
	}
	// The first channel was asked for just now: it is being watched, and
	// neither another channel nor a made-up ID pushes it out.
	if code, _, _ := httpGet(t, otherURL); code != http.StatusServiceUnavailable {
		t.Fatalf("second channel while the first is watched: %d, want 503", code)
	}
	var made manifest.ChannelID
	made[0] = 0xAB
	madeURL := strings.Replace(lf.gateway, lf.pub.ID().String(), made.String(), 1) + "index.m3u8"
	if code, _, _ := httpGet(t, madeURL); code != http.StatusServiceUnavailable {
		t.Fatalf("made-up channel while the first is watched: %d, want 503", code)
	}
	if ids := followed(); len(ids) != 1 || ids[0] != lf.pub.ID().String() {
		t.Fatalf("followed %v, want the first channel still", ids)
	}
	clock.Advance(liveEvictIdle + time.Second)
	if code, _, _ := httpGet(t, otherURL); code != http.StatusOK {
		t.Fatalf("second channel, the first unwatched for %v: %d, want 200", liveEvictIdle, code)
	}
	if ids := followed(); len(ids) != 1 || ids[0] != other.ID().String() {
		t.Fatalf("followed %v, want only the second channel", ids)
	}
	// A request in progress on the second channel: the first must wait.
	ch, _, err := lf.peer.live.acquire(other.ID())
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ := httpGet(t, lf.gateway+"index.m3u8")
	lf.peer.live.release(ch)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "--live-channels") {
		t.Fatalf("over the cap: %d %q, want 503 naming --live-channels", code, body)
	}
	if ids := followed(); len(ids) != 1 {
		t.Fatalf("followed %v over a cap of 1", ids)
	}
}

// TestLiveSegmentInUseOutlivesTheWindow: a segment that leaves the window
// while a request for it is in progress keeps its swarm until that request
// is done (a player behind the edge is still reading it), then loses it.
func TestLiveSegmentInUseOutlivesTheWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lf := newLiveFixture(t, ctx)
	lf.pub, _ = live.NewPublisher(live.PublisherConfig{Key: lf.key, Channel: "test", Watch: lf.watch, Out: lf.out, Window: 1, ChunkSize: 16 << 10})
	lf.release(t)
	first, err := lf.pub.Step(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := httpGet(t, lf.gateway+first.Segments[0].Name); code != http.StatusOK {
		t.Fatalf("first segment: %d", code)
	}
	lf.peer.live.mu.Lock()
	ch := lf.peer.live.chans[lf.pub.ID()]
	lf.peer.live.mu.Unlock()
	done := lf.peer.live.serving(ch, first.Segments[0].Content) // a request still reading it
	lf.release(t)
	second, err := lf.pub.Step(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the next segment's swarm", func() bool { return windowHeld(lf.peer, second) })
	if !windowHeld(lf.peer, first) {
		t.Fatal("a segment left the window and its swarm while a request was reading it")
	}
	done()
	waitFor(t, "the departed segment's swarm to stop once its request is done", func() bool { return !windowHeld(lf.peer, first) })
}

// TestLiveFirstPollRetriesAFailingOrigin: the first update of a channel,
// which a viewer waits for, survives an origin failing twice (503).
func TestLiveFirstPollRetriesAFailingOrigin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	failures, polls := 2, 0 // guarded by mu
	lf := newLiveFixtureWith(t, ctx, func(pc *PeerConfig) {
		target, err := url.Parse(pc.Origin)
		if err != nil {
			t.Fatal(err)
		}
		proxy := httputil.NewSingleHostReverseProxy(target)
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/"+layout.ChannelDir+"/") {
				mu.Lock()
				polls++
				fail := failures > 0
				failures--
				mu.Unlock()
				if fail {
					http.Error(w, "origin overloaded", http.StatusServiceUnavailable)
					return
				}
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(ts.Close)
		pc.Origin = ts.URL
	})
	lf.release(t)
	if u, err := lf.pub.Step(ctx); err != nil || u == nil {
		t.Fatalf("publish: %v, %v", u, err)
	}
	if code, body, _ := httpGet(t, lf.gateway+"index.m3u8"); code != http.StatusOK {
		t.Fatalf("playlist through an origin failing twice: %d %q, want 200", code, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if polls != 3 {
		t.Fatalf("%d update requests, want 3 (two failures, then the update)", polls)
	}
}
