//go:build e2e

// End-to-end test of the gateway with real browsers' players: hls.js and
// dash.js (from npm, pinned in testdata/browser/package.json) play HLS and
// DASH made by ffmpeg, published with `shoal publish` and served by a real
// `shoal peer` gateway, in Debian's headless Chromium with its normal
// security (same-origin policy, CORS). The page and the players come from a
// second loopback server, so every media request crosses origins, as it
// does for a site that plays through a viewer's local gateway.
//
// Needs chromium (apt-get install chromium) and the players (npm ci
// --prefix cmd/shoal/testdata/browser); .ci/run installs both. Either
// missing fails the test with the command to run, it is never skipped.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/media/mediatest"
)

// browserDir holds the test page and the npm-installed players.
const browserDir = "testdata/browser"

// playerResult is what the page POSTs to /result.
type playerResult struct {
	Player      string        `json:"player"`
	Version     string        `json:"version"`
	Outcome     string        `json:"outcome"` // played, fatal or timeout
	CurrentTime float64       `json:"currentTime"`
	Played      float64       `json:"played"` // media seconds actually played
	Errors      []playerError `json:"errors"`
	PageOrigin  string        `json:"pageOrigin"`
	Resources   []string      `json:"resources"` // every URL the page loaded
}

type playerError struct {
	Fatal   bool   `json:"fatal"`
	Type    string `json:"type"`
	Details string `json:"details"`
	Status  int    `json:"status"`
	Code    int    `json:"code"`
	URL     string `json:"url"`
}

// chromium is the path of Debian's chromium, or fails t.
func chromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is required to play in a real browser and is not installed (apt-get install chromium): %v", err)
	}
	return p
}

// playerScripts maps the page's /lib/ names to the npm-installed players.
func playerScripts(t *testing.T) map[string]string {
	t.Helper()
	libs := map[string]string{
		"hls.min.js":      filepath.Join(browserDir, "node_modules/hls.js/dist/hls.min.js"),
		"dash.all.min.js": filepath.Join(browserDir, "node_modules/dashjs/dist/modern/umd/dash.all.min.js"),
	}
	for _, p := range libs {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("player %s is not installed; run: npm ci --prefix cmd/shoal/%s (%v)", filepath.Base(p), browserDir, err)
		}
	}
	return libs
}

// pageServer serves the player page and the players on an origin of its
// own, and hands on each result the page POSTs.
func pageServer(t *testing.T) (*httptest.Server, <-chan playerResult) {
	t.Helper()
	libs := playerScripts(t)
	results := make(chan playerResult, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /player.html", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(browserDir, "player.html"))
	})
	mux.HandleFunc("GET /lib/{name}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := libs[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, p)
	})
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		var res playerResult
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&res); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case results <- res:
		default: // one result per page load; a second is ignored
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, results
}

// play opens pageURL in headless Chromium and returns the page's result.
// Chromium and its children are killed when the result is in.
func play(t *testing.T, pageURL string, results <-chan playerResult) playerResult {
	t.Helper()
	log := &fxLog{}
	// Normal web security; no sandbox (tests run as root), shared memory in
	// /tmp (containers have a small /dev/shm), and none of Chromium's own
	// traffic (updates, sync, metrics): the test talks to loopback only.
	cmd := exec.Command(chromium(t), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
		"--disable-background-networking", "--disable-component-update", "--no-pings",
		"--mute-audio", "--autoplay-policy=no-user-gesture-required",
		"--user-data-dir="+t.TempDir(), pageURL)
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
	select {
	case res := <-results:
		return res
	case err := <-exited:
		exited <- err
		t.Fatalf("chromium exited before the page reported (%v):\n%s", err, log.tail(8<<10))
	case <-time.After(2 * fxDeadline): // the page gives up after fxDeadline
		t.Fatalf("no result from the page within %v:\n%s", 2*fxDeadline, log.tail(8<<10))
	}
	return playerResult{}
}

// publishMediaDir publishes dir with `shoal publish` and returns the
// content ID.
func (r *fxRig) publishMediaDir(name, dir string) string {
	r.t.Helper()
	out, e, code := runBin(r.t, r.bin, "publish", "--key", r.key, "--out", r.layout,
		"--chunk-size", "256KiB", "--name", name, dir)
	if code != 0 {
		r.t.Fatalf("publish %s exit %d: %s", name, code, e)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

// TestBrowserPlayersPlayCrossOrigin: hls.js and dash.js, on a page of
// another origin in Chromium with its normal security, play several seconds
// of HLS and DASH through a shoal peer's gateway without a fatal error.
// Without CORS on the gateway, hls.js fails with manifestLoadError and
// dash.js with error 25 (manifest loading failed).
func TestBrowserPlayersPlayCrossOrigin(t *testing.T) {
	chromium(t)
	r := newFxRig(t)
	hlsDir := filepath.Join(r.dir, "hls")
	mediatest.HLS(t, hlsDir, mediatest.TS)
	dashDir := filepath.Join(r.dir, "dash")
	mediatest.DASH(t, dashDir)
	hlsID := r.publishMediaDir("hls", hlsDir)
	dashID := r.publishMediaDir("dash", dashDir)
	r.startOrigin()
	r.startTracker()
	peer := r.startPeer("viewer")
	page, results := pageServer(t)
	if page.URL == peer.gw {
		t.Fatalf("page and gateway share the origin %s", page.URL)
	}

	// Several seconds of the 6 s media: past the first two segments.
	const target = 4.0
	for _, tc := range []struct{ player, id, entry string }{
		{"hls", hlsID, "index.m3u8"},
		{"dash", dashID, "manifest.mpd"},
	} {
		t.Run(tc.player, func(t *testing.T) {
			src := peer.gw + "/c/" + tc.id + "/" + tc.entry
			q := url.Values{"player": {tc.player}, "src": {src},
				"target": {fmt.Sprint(target)}, "timeout": {fmt.Sprint(fxDeadline.Seconds())}}
			res := play(t, page.URL+"/player.html?"+q.Encode(), results)
			t.Logf("BROWSER %s %s: outcome=%s currentTime=%.2fs played=%.2fs errors=%d",
				tc.player, res.Version, res.Outcome, res.CurrentTime, res.Played, len(res.Errors))
			for _, e := range res.Errors {
				t.Logf("  player error: %+v", e)
				if e.Fatal {
					t.Errorf("%s: fatal player error %+v", tc.player, e)
				}
			}
			if res.Outcome != "played" || res.CurrentTime < target || res.Played < target-1 {
				t.Fatalf("%s did not play %.0f s of %s: outcome %q, currentTime %.2f s, played %.2f s",
					tc.player, target, src, res.Outcome, res.CurrentTime, res.Played)
			}
			// The page's origin is not the gateway's, and the media came
			// from the gateway: the playlist and segments crossed origins.
			if res.PageOrigin != page.URL || res.PageOrigin == peer.gw {
				t.Errorf("page origin %q, want %q (not the gateway's %q)", res.PageOrigin, page.URL, peer.gw)
			}
			var manifests, segments int
			for _, u := range res.Resources {
				if !strings.HasPrefix(u, peer.gw+"/c/"+tc.id+"/") {
					continue
				}
				switch {
				case strings.HasSuffix(u, "/"+tc.entry):
					manifests++
				case strings.HasSuffix(u, ".ts"), strings.HasSuffix(u, ".m4s"):
					segments++
				}
			}
			if manifests == 0 || segments < 2 {
				t.Errorf("the page loaded %d manifests and %d segments from the gateway %s, want the manifest and segments: %q",
					manifests, segments, peer.gw, res.Resources)
			}
			// The gateway saw the playback.
			sw, ok := peer.swarm(t, tc.id)
			if !ok || sw.Have == 0 {
				t.Errorf("gateway holds nothing of %s after playback: %+v", tc.id, sw)
			}
		})
	}
}
