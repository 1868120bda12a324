//go:build e2e

// End-to-end tests of housekeeping with real processes: what a killed
// `shoal get` leaves is gone after the next run, a restarted peer's cache
// scrub removes chunks damaged at rest, `shoal demo` takes no other
// command's environment, and a content ID starting with '-' is taken as the
// ID where the README puts it. Waits poll with an overall deadline.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

// TestKilledGetLeftoversGoneAfterRerun kills a get with SIGKILL three times
// mid-transfer (the origin's upload is capped so the transfer is slow), then
// lets a rerun finish: the output must be the source byte for byte, and
// nothing else may be left beside it. Each kill used to leave another
// full-size hidden temp file that nothing removed.
func TestKilledGetLeftoversGoneAfterRerun(t *testing.T) {
	const size = 16 << 20
	r := newFxRig(t)
	c := r.publish("killed", fxFile{"big.bin", size, 91})
	addr := freePort(t)
	r.originURL = "http://" + addr
	r.origin = r.start("origin", "origin", "--dir", r.layout, "--listen", addr, "--upload-limit", "4MiB/s")
	r.up("origin", r.originURL+"/metrics", r.origin)

	cache := filepath.Join(r.dir, "cache")
	outDir := filepath.Join(r.dir, "out")
	out := filepath.Join(outDir, "big.bin")
	args := []string{"get", "--origin", r.originURL, "--trust", r.pub, "--cache", cache, "--quiet", "-o", out, c.id}
	listing := func() []string {
		des, _ := os.ReadDir(outDir)
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		return names
	}

	for i, atChunks := range []int{8, 24, 40} { // of 64
		cmd := exec.Command(r.bin, args...)
		log := &fxLog{}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		waitFor(t, "get under way", fxDeadline, func() (bool, string) {
			select {
			case err := <-done:
				t.Fatalf("get %d exited before it was killed: %v\n%s", i, err, log.tail(4<<10))
			default:
			}
			n := countChunkFiles(t, cache)
			return n >= atChunks, fmt.Sprintf("cache holds %d chunks, waiting for %d", n, atChunks)
		})
		cmd.Process.Kill()
		<-done
		if got := listing(); !slices.Equal(got, []string{".big.bin.shoal-partial"}) {
			t.Fatalf("after kill %d, beside OUT: %v; want one partial output, the name a rerun finds", i+1, got)
		}
	}

	stdout, stderr, code := runBin(t, r.bin, args...)
	if code != 0 {
		t.Fatalf("rerun exit %d: %s", code, stderr)
	}
	sum, n := fileSum(t, out)
	if want := c.files["big.bin"]; n != want.size || sum != want.sum {
		t.Errorf("output: %d bytes, sha256 %x; want the source's %d bytes, %x", n, sum[:8], want.size, want.sum[:8])
	}
	if got := listing(); !slices.Equal(got, []string{"big.bin"}) {
		t.Errorf("beside OUT after the rerun: %v; want only big.bin", got)
	}
	t.Logf("FIGURE killed get: rerun said %q; left beside OUT: %v", strings.TrimSpace(stdout), listing())
}

// TestDemoIgnoresOtherCommandsEnvironment: variables set for `shoal origin`
// (its directory, its config file) and the old global names must not steer
// `shoal demo`, which once wrote its scratch files into a live origin
// directory that way.
func TestDemoIgnoresOtherCommandsEnvironment(t *testing.T) {
	bin := buildShoal(t)
	live := t.TempDir()
	sentinel := filepath.Join(live, "served-by-origin")
	if err := os.WriteFile(sentinel, []byte("live"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "origin.yaml")
	if err := os.WriteFile(cfg, []byte("dir: "+live+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "demo", "--size", "1MiB", "--peers", "2", "--linger=false")
	cmd.Env = append(os.Environ(),
		"SHOAL_DIR="+live, "SHOAL_ORIGIN_DIR="+live,
		"SHOAL_CONFIG="+cfg, "SHOAL_ORIGIN_CONFIG="+cfg)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, outb)
	}
	des, err := os.ReadDir(live)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 1 || des[0].Name() != "served-by-origin" {
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		t.Errorf("shoal demo wrote into the origin's directory: %v", names)
	}
	if !strings.Contains(string(outb), "ignoring SHOAL_DIR") {
		t.Errorf("demo output does not say SHOAL_DIR is ignored:\n%s", outb)
	}
}

// TestGetTakesIDStartingWithDash: one content ID in 64 starts with '-';
// `shoal get --origin URL --trust PUBKEY -o OUT "$ID"` must take it as the ID.
// The ID here is well formed but not published, so the origin's 404 for its
// manifest, not a complaint about an unknown flag, is the right answer.
func TestGetTakesIDStartingWithDash(t *testing.T) {
	r := newFxRig(t)
	r.publish("any", fxFile{"a.bin", 1000, 1})
	r.startOrigin()
	id := "-" + strings.Repeat("A", 41) + "E"
	out := filepath.Join(r.dir, "dash.out")
	for _, args := range [][]string{
		{"get", "--origin", r.originURL, "--trust", r.pub, "-o", out, id},
		{"get", "--origin", r.originURL, "--trust", r.pub, "-o", out, id + "/a.bin"},
		{"get", "--origin", r.originURL, "--trust", r.pub, "-o", out, "--", id},
	} {
		_, stderr, code := runBin(t, r.bin, args...)
		if code == 0 || strings.Contains(stderr, "flag provided but not defined") || !strings.Contains(stderr, "manifest") {
			t.Errorf("shoal %s: exit %d, stderr %q; want a failure to find the manifest of the ID", strings.Join(args, " "), code, stderr)
		}
	}
}

// TestPeerScrubRemovesDamagedChunks: chunks damaged while the peer was
// stopped are found by the background scrub of the restarted peer without
// any read (its start no longer re-hashes the cache), counted on /metrics,
// and the content is then served whole again.
func TestPeerScrubRemovesDamagedChunks(t *testing.T) {
	r := newFxRig(t)
	c := r.publish("scrub", fxFile{"doc.bin", 4 << 20, 77})
	r.startOrigin()
	url := "/c/" + c.id + "/doc.bin"
	p := r.startPeer("peer", "--scrub-rate", "0")
	wantWhole(t, "first GET", fxDo(t, http.MethodGet, p.gw+url), c.files["doc.bin"])
	p.stop(t)

	damaged := []core.Hash{c.chunkHash(t, "doc.bin", 2), c.chunkHash(t, "doc.bin", 11)}
	for _, h := range damaged {
		flipByte(t, p.cache, h, 99)
	}
	p = r.startPeerCache("peer-restarted", p.cache, "--scrub-rate", "2MiB/s")
	waitFor(t, "scrub removed the damaged chunks", fxDeadline, func() (bool, string) {
		n := peerMetric(t, p.gw, `shoal_peer_cache_corrupt_removed_total{found_at="scrub"}`)
		return n == int64(len(damaged)), fmt.Sprintf("scrub removed %d", n)
	})
	for _, h := range damaged {
		if _, err := os.Stat(chunkFile(p.cache, h)); err == nil {
			t.Errorf("damaged chunk %s still on disk", h.Short())
		}
	}
	if n := peerMetric(t, p.gw, `shoal_peer_cache_corrupt_removed_total{found_at="read"}`); n != 0 {
		t.Errorf("%d damaged chunks found by reads; nothing read them", n)
	}
	wantWhole(t, "GET after the scrub", fxDo(t, http.MethodGet, p.gw+url), c.files["doc.bin"])
}

// peerMetric reads one sample (name with its labels, as /metrics prints it)
// from a peer's /metrics.
func peerMetric(t *testing.T, gw, sample string) int64 {
	t.Helper()
	resp := fxDo(t, http.MethodGet, gw+"/metrics")
	for _, line := range strings.Split(string(resp.body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metrics: %q: %v", line, err)
			}
			return int64(f)
		}
	}
	t.Fatalf("metrics: no %s in:\n%s", sample, resp.body)
	return 0
}
