//go:build e2e

// End-to-end test of a peer whose cache disk is full: a real `shoal peer`
// whose cache sits on a small tmpfs the test mounts (so the test runs as
// root, as CI does), a real `shoal origin`, and the origin's own /metrics
// as the witness of what the peer asks of it.
//
// It logs "FIGURE full disk <window>: origin_requests=N origin_bytes=N".
// Every wait polls with an overall deadline; no assertion depends on timing.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// diskWindow is how long the full-disk test watches the origin after the
// first request (the figure is taken over 25 s: -args -disk-window 25s).
var diskWindow = flag.Duration("disk-window", 12*time.Second, "full-disk test: how long to watch the origin while the disk is full")

// mountTmpfs mounts a tmpfs of size bytes on dir (created) and unmounts it
// when the test ends, after the processes started later have stopped.
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test mounts a %d-byte tmpfs as the peer's cache disk and needs root (CI runs as root); run it as root", size)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("mount -t tmpfs -o size=%d tmpfs %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
			t.Errorf("umount %s: %v", dir, err)
		}
	})
}

// freeBytes is what an unprivileged writer may still put on dir's filesystem.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fillUntil writes a filler file in dir that leaves about leave bytes free.
func fillUntil(t *testing.T, dir string, leave int64) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for n := freeBytes(t, dir) - leave; n > 0; n -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(int64(len(buf)), n)]); err != nil {
			t.Fatalf("filler: %v", err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// doWithin is one GET that the client gives up after d; it reports the
// status (0: no response), the body, and how the body ended.
func doWithin(url string, d time.Duration) (status int, body []byte, readErr, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := fxClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, readErr = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, readErr, nil
}

// TestFullDiskAnswers503AndStopsOriginTraffic: with the peer's cache disk
// full (a tmpfs smaller than the cache quota, nearly filled), a GET is
// answered 503 with one line naming the full disk, before any body; the
// peer then stops asking the origin for anything while nobody is served.
// Once space returns, the same GET succeeds byte for byte without a
// restart of the peer.
//
// Both with the default read-ahead window and with ?prefetch=all, where the
// peer wants the whole content whether or not a client is connected.
func TestFullDiskAnswers503AndStopsOriginTraffic(t *testing.T) {
	for _, prefetch := range []string{"window", "all"} {
		t.Run(prefetch, func(t *testing.T) { fullDisk(t, prefetch) })
	}
}

func fullDisk(t *testing.T, prefetch string) {
	const (
		size  = 16 << 20 // the file: more than the whole filesystem
		fsize = 12 << 20 // the tmpfs
		quota = "6MiB"   // the peer's eviction quota, which fits the tmpfs once it is empty
	)
	r := newFxRig(t)
	c := r.publish("disk", fxFile{"big.bin", size, 9001})
	src := c.files["big.bin"]
	r.startOrigin()
	disk := filepath.Join(r.dir, "disk")
	mountTmpfs(t, disk, fsize)
	p := r.startPeerCache("peer", filepath.Join(disk, "cache"), "--cache-size", quota)
	// Less than one chunk left: the manifest and hash layer still fit,
	// the first chunk does not.
	filler := fillUntil(t, disk, fxChunk/2)
	url := p.gw + "/c/" + c.id + "/big.bin?prefetch=" + prefetch
	meta := r.manifestBytes(c) + layerBytes(size)

	before := r.settle()
	t0 := time.Now()
	status, body, readErr, err := doWithin(url, 10*time.Second)
	got := time.Since(t0).Round(100 * time.Millisecond)
	atEnd := r.originCounters()
	// The origin is watched for the window from the request on, whatever
	// the request did; the figure is logged before any verdict.
	var quiet fxOrigin
	var quietAt time.Time
	for time.Since(t0) < *diskWindow {
		o := r.originCounters()
		if o != quiet || o.inFlight != 0 {
			quiet, quietAt = o, time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	last := r.originCounters()
	d, after := last.sub(before), last.sub(atEnd)
	t.Logf("FIGURE full disk, prefetch %s, %v: origin_requests=%d origin_bytes=%d, of which after the GET ended: origin_requests=%d origin_bytes=%d "+
		"(GET: status %d after %v, body %q, body error %v, error %v)",
		prefetch, *diskWindow, d.requests, d.bytes, after.requests, after.bytes, status, got, body[:min(len(body), 300)], readErr, err)

	if err != nil {
		t.Fatalf("GET with the cache disk full: no answer: %v", err)
	}
	if status != http.StatusServiceUnavailable {
		t.Fatalf("GET with the cache disk full: status %d (%d body bytes, %v), want 503", status, len(body), readErr)
	}
	line := strings.TrimSuffix(string(body), "\n")
	if !strings.Contains(line, "cache disk full") || strings.Contains(line, "\n") {
		t.Errorf("503 body %q: want one line saying the cache disk is full", body)
	}
	if stale := time.Since(quietAt); stale < *diskWindow/3 {
		t.Errorf("origin traffic still changing %v before the end of the %v window (last reading %+v): the peer keeps fetching with nobody served",
			stale.Round(time.Millisecond), *diskWindow, quiet)
	}
	// The manifest and hash layer, and at most a few chunks already in
	// flight when the first store failed.
	if limit := meta + 8*fxChunk; d.bytes > limit {
		t.Errorf("with the disk full the origin served %d bytes (%d requests); want at most %d (metadata %d + 8 chunks)",
			d.bytes, d.requests, limit, meta)
	}
	if m := peerMetricText(t, p, "shoal_peer_cache_writable"); m != "0" {
		t.Errorf("shoal_peer_cache_writable = %q with the disk full, want 0", m)
	}
	if logs := strings.Count(p.log.String(), "cache disk full"); logs != 1 {
		t.Errorf("the peer logged the full disk %d times, want once", logs)
	}

	// Space returns: the peer notices by itself, and the same GET is
	// served whole, byte for byte, by the same process.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var resp fxResponse
	waitFor(t, "GET succeeds once space returns", fxDeadline, func() (bool, string) {
		resp = fxDo(t, http.MethodGet, url)
		if resp.err != nil {
			return false, resp.err.Error()
		}
		return resp.status == 200, fmt.Sprintf("status %d: %q", resp.status, resp.body[:min(len(resp.body), 200)])
	})
	wantWhole(t, "GET after space returned", resp, src)
	select {
	case <-p.done:
		t.Fatalf("the peer exited: %v", p.err)
	default:
	}
	if m := peerMetricText(t, p, "shoal_peer_cache_writable"); m != "1" {
		t.Errorf("shoal_peer_cache_writable = %q once the GET succeeded, want 1", m)
	}
	if !strings.Contains(p.log.String(), "writable again") {
		t.Errorf("the peer did not log that its cache disk is writable again")
	}
}

// peerMetric is the value of an unlabelled metric on the peer's /metrics.
func peerMetricText(t *testing.T, p *fxPeer, name string) string {
	t.Helper()
	resp := fxDo(t, http.MethodGet, p.gw+"/metrics")
	if resp.err != nil || resp.status != 200 {
		t.Fatalf("peer metrics: %v (status %d)", resp.err, resp.status)
	}
	for _, line := range strings.Split(string(resp.body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
