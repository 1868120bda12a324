package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/media/mediatest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/player"
	"github.com/shoal-cdn/shoal/publish"
)

// newMediaFixture publishes the media output gen writes (returning the
// entry playlist's path) behind an origin and a real tracker.
func newMediaFixture(t *testing.T, gen func(dir string) string) (sf *swarmFixture, entry string) {
	t.Helper()
	return newMediaFixtureVersion(t, gen, 0)
}

// newMediaFixtureVersion is newMediaFixture with the manifest format
// version (publish.Config.ManifestVersion).
func newMediaFixtureVersion(t *testing.T, gen func(dir string) string, version int) (sf *swarmFixture, entry string) {
	t.Helper()
	fx := &fixture{src: filepath.Join(t.TempDir(), "media"), layoutDir: t.TempDir()}
	entry, err := filepath.Rel(fx.src, gen(fx.src))
	if err != nil {
		t.Fatal(err)
	}
	fx.key = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	res, err := publish.Publish(context.Background(), publish.Config{Key: fx.key, Out: fx.layoutDir, ChunkSize: testChunk, Paths: []string{fx.src}, ManifestVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	fx.id, fx.m = res.ID, res.Manifest
	if fx.m.Media == nil {
		t.Fatal("publish did not recognise the media output")
	}
	sf = &swarmFixture{fixture: fx, mem: netx.NewMemNetwork()}
	srv := httptest.NewServer(http.FileServer(http.Dir(fx.layoutDir)))
	t.Cleanup(srv.Close)
	fx.url = srv.URL
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sf.trackerLn = ln.Addr().String()
	sf.trackerURL = "http://" + sf.trackerLn
	sf.startTracker(t, ln)
	t.Cleanup(func() { sf.stopTrack(); <-sf.trackDone })
	return sf, filepath.ToSlash(entry)
}

// frames counts the decoded video frames of src (a file or URL) with ffprobe.
func frames(t *testing.T, src string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", src).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", src, err, out)
	}
	var n int
	if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &n); err != nil || n == 0 {
		t.Fatalf("ffprobe %s: frame count %q", src, out)
	}
	return n
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestPlaybackThroughGateway(t *testing.T) {
	for _, tc := range []struct {
		name  string
		gen   func(t *testing.T, dir string) string
		ctype string
	}{
		{"hls-ts", func(t *testing.T, dir string) string { return mediatest.HLS(t, dir, mediatest.TS) }, "application/vnd.apple.mpegurl"},
		{"hls-fmp4", func(t *testing.T, dir string) string { return mediatest.HLS(t, dir, mediatest.FMP4) }, "application/vnd.apple.mpegurl"},
		{"dash", func(t *testing.T, dir string) string { return mediatest.DASH(t, dir) }, "application/dash+xml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sf, entry := newMediaFixture(t, func(dir string) string { return tc.gen(t, dir) })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var gws []*httptest.Server
			for range 2 {
				gw := httptest.NewServer(sf.peer(t, ctx).Gateway())
				t.Cleanup(gw.Close)
				gws = append(gws, gw)
			}
			url0 := fmt.Sprintf("%s/c/%s/%s", gws[0].URL, sf.id, entry)
			resp, err := http.Get(url0)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want, _ := os.ReadFile(filepath.Join(sf.src, entry))
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.ctype || !bytes.Equal(body, want) {
				t.Fatalf("playlist: %s, %q, %d bytes", resp.Status, resp.Header.Get("Content-Type"), len(body))
			}

			// ffmpeg decodes every frame through the first gateway.
			onDisk := frames(t, filepath.Join(sf.src, entry))
			if got := frames(t, url0); got != onDisk {
				t.Fatalf("%d frames through the gateway, %d from the files", got, onDisk)
			}
			if out, err := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-i", url0, "-f", "null", "-").CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg through the gateway: %v\n%s", err, out)
			}

			// The emulated player plays it to the end through the second.
			url1 := fmt.Sprintf("%s/c/%s/%s", gws[1].URL, sf.id, entry)
			rep, err := player.Play(ctx, player.Config{URL: url1, Speed: 10, StatusURL: gws[1].URL + "/api/status", PlaybackID: "emu"})
			if err != nil {
				t.Fatal(err)
			}
			var total time.Duration
			for _, s := range sf.m.Media.Renditions[0].Segments {
				total += time.Duration(s.DurationMs) * time.Millisecond
			}
			t.Logf("player at 10×: startup %v, stalls %d (%v), rebuffer ratio %.3f, %d segments, %d bytes, offload %.2f",
				rep.Startup, rep.Stalls, rep.StallWall, rep.RebufferRatio, rep.Segments, rep.Bytes, rep.Offload)
			if rep.State != player.Ended || rep.Played < total-time.Second/2 || rep.Bytes == 0 {
				t.Fatalf("player did not play to the end: %+v (stream %v)", rep, total)
			}
			if (rep.Stalls == 0) != (rep.StallWall == 0) || rep.RebufferRatio < 0 || rep.RebufferRatio >= 1 {
				t.Fatalf("inconsistent report: %+v", rep)
			}

			// The gateway saw the playback sessions and exports them.
			var st Status
			getJSON(t, gws[1].URL+"/api/status", &st)
			var emu *PlaybackStatus
			for i, pb := range st.Playbacks {
				if pb.Client == "id:emu" {
					emu = &st.Playbacks[i]
				}
			}
			if emu == nil || !emu.Started || emu.Segments == 0 || emu.BytesSent == 0 ||
				emu.BytesSent != emu.BytesDirectOrigin+emu.BytesHeld+emu.BytesWaited || emu.BytesDirectOrigin == 0 {
				t.Fatalf("gateway's playbacks: %+v", st.Playbacks)
			}
			resp, err = http.Get(gws[1].URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			m, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, name := range []string{"shoal_playback_startup_seconds_count", "shoal_playback_stalls_total", "shoal_playback_stall_seconds_total", "shoal_playback_sessions", `shoal_playback_bytes_total{source="direct_origin"}`} {
				if !strings.Contains(string(m), name) {
					t.Errorf("/metrics lacks %s", name)
				}
			}
		})
	}
}

func TestMissingSegmentIsAClearError(t *testing.T) {
	sf, entry := newMediaFixture(t, func(dir string) string { return mediatest.HLS(t, dir, mediatest.TS) })
	// Take the third segment's first chunk off the origin: the first two
	// are start-up (straight from the origin), the third goes through the
	// deadline lane and its late fallback.
	segs := sf.m.Media.Renditions[0].Segments
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	lost := segs[2].Path
	var root core.Hash
	for _, f := range sf.m.Files {
		if f.Path == lost {
			root = f.Root
		}
	}
	hl, err := os.ReadFile(filepath.Join(sf.layoutDir, filepath.FromSlash(layout.HashLayerPath(root))))
	if err != nil {
		t.Fatal(err)
	}
	var h core.Hash
	copy(h[:], hl[:32])
	if err := os.Remove(filepath.Join(sf.layoutDir, filepath.FromSlash(layout.ChunkPath(h)))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := sf.peer(t, ctx)
	p.plays.lateAfter = 100 * time.Millisecond
	gw := httptest.NewServer(p.Gateway())
	defer gw.Close()
	u := fmt.Sprintf("%s/c/%s/%s", gw.URL, sf.id, entry)
	_, err = player.Play(ctx, player.Config{URL: u, Speed: 50})
	if !errors.Is(err, player.ErrFetch) || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "segment 2 "+lost) {
		t.Fatalf("playing with a segment nobody has: %v", err)
	}
	t.Logf("player error: %v", err)
	// The gateway is still up and serving.
	resp, err := http.Get(u)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("gateway after the failure: %v %v", resp, err)
	}
	resp.Body.Close()
}
