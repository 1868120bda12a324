package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media"
	"github.com/shoal-cdn/shoal/media/mediatest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/origin"
)

// liveFixture is a live publisher fed by a replayed encoder, an origin over
// its layout, and one peer (in-memory host) whose gateway serves /live/.
type liveFixture struct {
	key      ed25519.PrivateKey
	src      string // finished ffmpeg output the encoder replays
	vod      *media.MediaPlaylist
	watch    string
	out      string
	released int
	pub      *live.Publisher
	gateway  string
	peer     *Peer
	origin   *origin.Server
}

func newLiveFixture(t *testing.T, ctx context.Context) *liveFixture {
	t.Helper()
	return newLiveFixtureWith(t, ctx, nil)
}

// newLiveFixtureWith lets tune change the peer's config.
func newLiveFixtureWith(t *testing.T, ctx context.Context, tune func(*PeerConfig)) *liveFixture {
	t.Helper()
	lf := &liveFixture{
		key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)),
		src: t.TempDir(), watch: t.TempDir(), out: t.TempDir(),
	}
	pl := mediatest.HLS(t, lf.src, mediatest.TS)
	b, err := os.ReadFile(pl)
	if err != nil {
		t.Fatal(err)
	}
	if lf.vod, err = media.ParseMediaPlaylist(pl, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if lf.pub, err = live.NewPublisher(live.PublisherConfig{
		Key: lf.key, Channel: "test", Watch: lf.watch, Out: lf.out, Window: 6, ChunkSize: 16 << 10,
	}); err != nil {
		t.Fatal(err)
	}
	srv, err := origin.New(origin.Config{Dir: lf.out})
	if err != nil {
		t.Fatal(err)
	}
	lf.origin = srv
	ots := httptest.NewServer(srv.Handler())
	t.Cleanup(ots.Close)
	h, err := netx.NewMemNetwork().NewHost("")
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	pc := PeerConfig{CacheDir: t.TempDir(), Origin: ots.URL, Trust: manifest.NewKeySet(manifest.PublicOf(lf.key)), Host: h}
	if tune != nil {
		tune(&pc)
	}
	lf.peer, err = NewPeer(pctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); lf.peer.Close() })
	mux := http.NewServeMux()
	lf.peer.liveRoutes(mux)
	gw := httptest.NewServer(mux)
	t.Cleanup(gw.Close)
	lf.gateway = gw.URL + "/live/" + lf.pub.ID().String() + "/"
	return lf
}

// release lets the encoder finish one more segment (ending the playlist
// after the last), the way ffmpeg grows a live output.
func (lf *liveFixture) release(t *testing.T) {
	t.Helper()
	if lf.released < len(lf.vod.Segments) {
		s := lf.vod.Segments[lf.released]
		b, err := os.ReadFile(filepath.Join(lf.src, s.URI))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(lf.watch, s.URI), b, 0o644); err != nil {
			t.Fatal(err)
		}
		lf.released++
	}
	pl := &media.MediaPlaylist{Version: 3, TargetDuration: lf.vod.TargetDuration, Segments: lf.vod.Segments[:lf.released], Ended: lf.released == len(lf.vod.Segments)}
	b, err := pl.Encode()
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(lf.watch, ".index.m3u8")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(lf.watch, "index.m3u8")); err != nil {
		t.Fatal(err)
	}
}

func httpGet(t *testing.T, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// TestLiveThroughGateway runs encoder → live publisher → origin → peer →
// gateway → ffmpeg, with the channel still growing while ffmpeg plays.
func TestLiveThroughGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	lf := newLiveFixture(t, ctx)
	lf.release(t)
	lf.release(t)
	pubDone := make(chan error, 1)
	go func() { pubDone <- lf.pub.Run(ctx) }()

	// The gateway's playlist lists both segments once the publisher has
	// seen them; it is live (no ENDLIST) and not cacheable.
	var body string
	waitFor(t, "two segments in the gateway playlist", func() bool {
		code, b, hdr := httpGet(t, lf.gateway+"index.m3u8")
		body = b
		return code == http.StatusOK && hdr.Get("Cache-Control") == "no-cache" && strings.Count(b, "#EXTINF") == 2
	})
	pl, err := media.ParseMediaPlaylist("gateway", strings.NewReader(body))
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if pl.Ended || pl.Segments[0].URI != lf.vod.Segments[0].URI {
		t.Fatalf("gateway playlist:\n%s", body)
	}
	// Segment bytes are the encoder's, verified.
	code, seg, _ := httpGet(t, lf.gateway+pl.Segments[1].URI)
	want, _ := os.ReadFile(filepath.Join(lf.src, lf.vod.Segments[1].URI))
	if code != http.StatusOK || seg != string(want) {
		t.Fatalf("segment: status %d, %d bytes, want %d", code, len(seg), len(want))
	}

	// ffmpeg plays the live playlist while the last segment is still to
	// come.
	var stderr strings.Builder
	ff := exec.CommandContext(ctx, mediatest.FFmpeg(t), "-v", "error", "-nostdin", "-i", lf.gateway+"index.m3u8",
		"-t", "4", "-map", "0:v", "-f", "framecrc", "-")
	var frames bytes.Buffer
	ff.Stdout, ff.Stderr = &frames, &stderr
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	lf.release(t) // last segment, and the end of the stream
	waitFor(t, "the last segment in the gateway playlist", func() bool {
		_, b, _ := httpGet(t, lf.gateway+"index.m3u8")
		return strings.Count(b, "#EXTINF") == 3 && strings.Contains(b, "#EXT-X-ENDLIST")
	})
	t.Logf("segment appeared in the watch dir → listed by the gateway: %v", time.Since(released).Round(time.Millisecond))
	if err := ff.Wait(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, stderr.String())
	}
	n := 0
	for _, line := range strings.Split(frames.String(), "\n") {
		if strings.HasPrefix(line, "0,") {
			n++
		}
	}
	if n < 90 { // 4 s at 25 frames/s
		t.Fatalf("ffmpeg decoded %d video frames from the live playlist, want about 100\n%s", n, stderr.String())
	}
	// The gateway measured the live playback as it does an on-demand one:
	// started, with a start-up time, segments and watch time (what the
	// fleet telemetry reports).
	var lp *PlaybackStatus
	for _, pb := range lf.peer.Status().Playbacks {
		if pb.Rendition == "live" {
			lp = &pb
		}
	}
	if lp == nil || !lp.Started || lp.StartupSeconds <= 0 || lp.Segments < 3 || lp.BytesSent <= 0 {
		t.Fatalf("live playback in the gateway's status: %+v; want one started, with a start-up time, 3 segments or more and bytes", lp)
	}
	if err := <-pubDone; err != nil {
		t.Fatalf("publisher: %v", err)
	}
}

// TestLiveSegmentMissingOnOrigin: a listed segment the origin cannot serve
// is a clear gateway error, and the gateway keeps working.
func TestLiveSegmentMissingOnOrigin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lf := newLiveFixture(t, ctx)
	lf.release(t)
	lf.release(t)
	u, err := lf.pub.Step(ctx)
	if err != nil || u == nil {
		t.Fatalf("publish: %v, %v", u, err)
	}
	lost := u.Segments[1]
	if err := os.Remove(filepath.Join(lf.out, layout.ManifestPath(lost.Content))); err != nil {
		t.Fatal(err)
	}
	code, body, _ := httpGet(t, lf.gateway+lost.Name)
	if code != http.StatusBadGateway || !strings.Contains(body, lost.Name) || !strings.Contains(body, "not on the origin") {
		t.Fatalf("missing segment: %d %q", code, body)
	}
	if code, _, _ := httpGet(t, lf.gateway+u.Segments[0].Name); code != http.StatusOK {
		t.Fatalf("the segment the origin has: status %d", code)
	}
	for _, tc := range []struct {
		url  string
		code int
	}{
		{lf.gateway + "nosuch.ts", http.StatusNotFound},
		{strings.Replace(lf.gateway, lf.pub.ID().String(), manifest.ChannelIDOf(manifest.PublicOf(lf.key), "other").String(), 1) + "index.m3u8", http.StatusNotFound},
		{strings.Replace(lf.gateway, lf.pub.ID().String(), "bad-id", 1) + "index.m3u8", http.StatusBadRequest},
	} {
		if code, body, _ := httpGet(t, tc.url); code != tc.code {
			t.Errorf("%s: %d %q, want %d", tc.url, code, body, tc.code)
		}
	}
}

// TestLiveLeavesDepartedSegments: segments that leave the window lose their
// swarm on the peer.
func TestLiveLeavesDepartedSegments(t *testing.T) {
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
	held := func(u *manifest.ChannelUpdate) bool {
		for _, s := range lf.peer.Sessions() {
			if s.Content().ID == u.Segments[0].Content {
				return true
			}
		}
		return false
	}
	if !held(first) {
		t.Fatal("the window's segment has no swarm")
	}
	lf.release(t)
	second, err := lf.pub.Step(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the departed segment's swarm to stop", func() bool { return held(second) && !held(first) })
}
