package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
)

// TestFirstPlaylistServedWhileTrackerHangs: a viewer's first playlist
// needs the manifest and the playlist's own bytes from the origin, never
// the swarm. With a tracker that takes every announce and never answers,
// the master playlist of a 3,000-segment content is still served whole,
// and the manifest crossed the wire gzip-encoded.
func TestFirstPlaylistServedWhileTrackerHangs(t *testing.T) {
	f := newOnDemandFixture(t, func(dir string) string { return segmentedHLS(t, dir, 3000) })
	o := newOriginLog(t, f.layoutDir)
	var announces atomic.Int64
	hang := make(chan struct{})
	tr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		announces.Add(1)
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer tr.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := f.mem.NewHost("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPeer(ctx, PeerConfig{
		CacheDir: t.TempDir(), Origin: o.url, Tracker: tr.URL, AnnounceInterval: time.Second,
		Trust: manifest.NewKeySet(manifest.PublicOf(f.key)), Host: h,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Before the peer's Close (its last announce) and the tracker's
	// Close, both of which wait for the hung requests.
	defer close(hang)
	gw := httptest.NewServer(p.Gateway())
	defer gw.Close()

	// An overall deadline, not a timing assert: a join that waited for the
	// swarm would wait for ever.
	rctx, rcancel := context.WithTimeout(ctx, time.Minute)
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, fmt.Sprintf("%s/c/%s/%s", gw.URL, f.id, f.m.Media.Entry), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("master playlist while the tracker hangs: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("master playlist: %s, %v", resp.Status, err)
	}
	want, err := os.ReadFile(filepath.Join(f.src, f.m.Media.Entry))
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != string(want) {
		t.Fatalf("master playlist differs from the published one:\n%s", body)
	}
	// The tracker was asked (the swarm is being joined) and has answered
	// nothing.
	deadline := time.Now().Add(time.Minute)
	for announces.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if announces.Load() == 0 {
		t.Fatal("the peer never announced to the tracker")
	}

	mp := layout.ManifestPath(f.id)
	mb, err := os.ReadFile(filepath.Join(f.layoutDir, filepath.FromSlash(mp)))
	if err != nil {
		t.Fatal(err)
	}
	vw := f.view(o)
	if vw.reqs[mp] != 1 || vw.bytes[mp] <= 0 || vw.bytes[mp] > int64(len(mb))/2 {
		t.Fatalf("manifest of %d bytes: %d requests, %d bytes on the wire; want 1 request, gzip-encoded", len(mb), vw.reqs[mp], vw.bytes[mp])
	}
	t.Logf("manifest of %d files: %d bytes, %d on the wire", len(f.m.Files), len(mb), vw.bytes[mp])
}
