package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media/mediatest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/player"
)

// pagedFiles is a tree of multi multi-chunk files (more than a root page
// holds: a paged manifest of two pages) plus a single-chunk and an empty
// file (inline roots).
func pagedFiles(multi int) map[string]int {
	files := map[string]int{"small.txt": 100, "empty": 0}
	for i := range multi {
		files[fmt.Sprintf("p/f%03d.bin", i)] = testChunk + 1 + i
	}
	return files
}

func TestPagedGetFromOrigin(t *testing.T) {
	fx := publishTreeVersion(t, "paged", 31, pagedFiles(manifest.RootsPerPage+3), manifest.VersionPaged)
	if !fx.m.Paged() || len(fx.m.RootPages) != 2 {
		t.Fatalf("published version %d with %d root pages", fx.m.Version, len(fx.m.RootPages))
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := fx.get(t, fx.id.String(), out); err != nil {
		t.Fatal(err)
	}
	sameTree(t, fx.src, out)
	// One file: only its own root page is needed.
	one := filepath.Join(t.TempDir(), "one")
	if _, err := fx.get(t, fx.id.String()+"/p/f130.bin", one); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(fx.src, "p", "f130.bin"))
	if got, _ := os.ReadFile(one); !bytes.Equal(got, want) {
		t.Fatal("single file of a paged content differs")
	}
}

// TestTamperedRootPageRejected: a root page that does not hash to what the
// signed manifest lists fails the fetch, with nothing written.
func TestTamperedRootPageRejected(t *testing.T) {
	fx := publishTreeVersion(t, "tamper-page", 32, pagedFiles(manifest.RootsPerPage+3), manifest.VersionPaged)
	for page, h := range fx.m.RootPages {
		t.Run(fmt.Sprint("page ", page), func(t *testing.T) {
			p := filepath.Join(fx.layoutDir, filepath.FromSlash(layout.RootPagePath(h)))
			orig, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(orig)
			bad[len(bad)/2] ^= 0x10
			os.WriteFile(p, bad, 0o644)
			defer os.WriteFile(p, orig, 0o644)
			outDir := t.TempDir()
			_, err = fx.get(t, fx.id.String(), filepath.Join(outDir, "out"))
			if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "root page") {
				t.Fatalf("get with a tampered root page: %v, want ErrVerify naming the root page", err)
			}
			if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
				t.Fatalf("output dir holds %v after a failed get", ents)
			}
		})
	}
}

// pagedSwarm is a paged content of a few files behind an origin the test
// can stop (each metadata fetch then waits for the origin's retries before
// it asks peers), a tracker, and peers on an in-memory network.
func pagedSwarm(t *testing.T, name string, seed uint64) (*swarmFixture, *httptest.Server) {
	t.Helper()
	fx := publishTreeVersion(t, name, seed, pagedFiles(6), manifest.VersionPaged)
	hs := httptest.NewServer(fx.srv.Handler())
	t.Cleanup(hs.Close)
	fx.url = hs.URL
	sf := &swarmFixture{fixture: fx, mem: netx.NewMemNetwork()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sf.trackerLn = ln.Addr().String()
	sf.trackerURL = "http://" + sf.trackerLn
	sf.startTracker(t, ln)
	t.Cleanup(func() { sf.stopTrack(); <-sf.trackDone })
	return sf, hs
}

// TestPagedNewcomerGetsRootPagesFromPeers: with the origin stopped, a
// newcomer learns the manifest, its root pages, the hash layers and every
// chunk from a peer that holds the content.
func TestPagedNewcomerGetsRootPagesFromPeers(t *testing.T) {
	sf, hs := pagedSwarm(t, "paged-peers", 33)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seed := sf.peer(t, ctx)
	s, err := seed.JoinAll(ctx, sf.id)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(2 * time.Minute):
		t.Fatalf("seed stalled: %+v", seed.Status().Swarms[0])
	}
	for _, h := range sf.m.RootPages {
		if !seed.cache.has(layout.RootPagePath(h)) {
			t.Fatalf("the seed's cache lacks root page %s", h.Short())
		}
	}
	hs.Close()
	waitFor(t, "the tracker lists the seed", func() bool {
		sw := sf.track.Swarms()
		return len(sw) == 1 && sw[0].Peers == 1
	})
	late := sf.peer(t, ctx)
	ls, err := late.JoinAll(ctx, sf.id)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ls.Done():
	case <-time.After(2 * time.Minute):
		t.Fatalf("newcomer stalled with the origin stopped: %+v", late.Status().Swarms[0])
	}
	if st := late.Status().Swarms[0]; st.BytesFromPeers == 0 || st.BytesFromOrigin != 0 {
		t.Fatalf("newcomer with the origin stopped: %+v", st)
	}
	for _, h := range sf.m.RootPages {
		if !late.cache.has(layout.RootPagePath(h)) {
			t.Fatalf("the newcomer's cache lacks root page %s", h.Short())
		}
	}
	// What it holds is what was published.
	c := ls.Content()
	for fi, f := range c.Manifest.Files {
		got, err := late.File(ctx, ls, fi)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(filepath.Join(sf.src, filepath.FromSlash(f.Path)))
		var rb manifest.RootBuilder
		for k := range f.Chunks {
			b, err := late.cache.chunks.Get(c.Hash(c.FileChunk(fi, int(k))))
			if err != nil || !bytes.Equal(b, want[k*testChunk:min(int64(len(want)), (k+1)*testChunk)]) {
				t.Fatalf("%s chunk %d: %v", f.Path, k, err)
			}
			rb.Add(c.Hash(c.FileChunk(fi, int(k))))
		}
		if f.Chunks > 0 && rb.Root() != got.Root {
			t.Fatalf("%s: root %s from its page, chunks give %s", f.Path, got.Root.Short(), rb.Root().Short())
		}
	}
	// Purging the content takes its root pages too.
	late.purge(sf.id, c.Manifest)
	for _, h := range sf.m.RootPages {
		if late.cache.has(layout.RootPagePath(h)) {
			t.Fatalf("root page %s left after a purge", h.Short())
		}
	}
}

// TestPagedTamperedPageFromPeerRejected: a root page a peer sends that does
// not hash to the signed page hash is refused, and the file's root stays
// unknown.
func TestPagedTamperedPageFromPeerRejected(t *testing.T) {
	sf, hs := pagedSwarm(t, "paged-bad-peer", 34)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seed := sf.peer(t, ctx)
	s, err := seed.JoinAll(ctx, sf.id)
	if err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	h := sf.m.RootPages[0]
	p := seed.cache.file(layout.RootPagePath(h))
	b, _ := os.ReadFile(p)
	b[5] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	hs.Close()
	waitFor(t, "the tracker lists the seed", func() bool {
		sw := sf.track.Swarms()
		return len(sw) == 1 && sw[0].Peers == 1
	})
	late := sf.peer(t, ctx)
	ls, err := late.Join(ctx, sf.id)
	if err != nil {
		t.Fatal(err)
	}
	fi := -1
	for i, f := range ls.Content().Manifest.Files {
		if f.Path == "p/f003.bin" {
			fi = i
		}
	}
	if _, ok := ls.Content().Roots.Page(fi); !ok {
		t.Fatal("p/f003.bin's root is not in a page")
	}
	// The origin's error is the one wrapped; the peer's is told.
	if _, err := late.File(ctx, ls, fi); err == nil || !strings.Contains(err.Error(), manifest.ErrBadRootPage.Error()) {
		t.Fatalf("root from a tampered page: %v, want the peer's page refused as a bad root page", err)
	}
	if _, ok := ls.Content().Roots.Root(fi); ok || late.cache.has(layout.RootPagePath(h)) {
		t.Fatal("a tampered root page was taken")
	}
}

// TestPagedPlaybackThroughGateway: an HLS content with a paged manifest
// plays to the end through the gateway, each segment's ETag its real root.
func TestPagedPlaybackThroughGateway(t *testing.T) {
	sf, entry := newMediaFixtureVersion(t, func(dir string) string { return mediatest.HLS(t, dir, mediatest.TS) }, manifest.VersionPaged)
	if !sf.m.Paged() || len(sf.m.RootPages) == 0 {
		t.Fatalf("published version %d with %d root pages", sf.m.Version, len(sf.m.RootPages))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gw := httptest.NewServer(sf.peer(t, ctx).Gateway())
	t.Cleanup(gw.Close)
	url := fmt.Sprintf("%s/c/%s/%s", gw.URL, sf.id, entry)
	if got, want := frames(t, url), frames(t, filepath.Join(sf.src, entry)); got != want {
		t.Fatalf("%d frames through the gateway, %d from the files", got, want)
	}
	rep, err := player.Play(ctx, player.Config{URL: url, Speed: 10, StatusURL: gw.URL + "/api/status", PlaybackID: "emu"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != player.Ended || rep.Bytes == 0 {
		t.Fatalf("player did not play to the end: %+v", rep)
	}
	// A segment's ETag is the root its page gives, which its hash layer at
	// the origin reproduces.
	seg := sf.m.Media.Renditions[0].Segments[0].Path
	f, _ := sf.m.File(seg)
	if f.Chunks < 2 {
		t.Fatalf("segment %s has %d chunks: its root is inline", seg, f.Chunks)
	}
	resp, err := http.Get(fmt.Sprintf("%s/c/%s/%s", gw.URL, sf.id, seg))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	etag := strings.Trim(resp.Header.Get("ETag"), `"`)
	want, _ := os.ReadFile(filepath.Join(sf.src, filepath.FromSlash(seg)))
	if resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("segment %s: %s, %d bytes", seg, resp.Status, len(body))
	}
	layer, err := os.ReadFile(filepath.Join(sf.layoutDir, "hashes", etag))
	if err != nil {
		t.Fatalf("ETag %q names no hash layer at the origin: %v", etag, err)
	}
	l := make(manifest.HashLayer, len(layer)/core.HashSize)
	for i := range l {
		copy(l[i][:], layer[i*core.HashSize:])
	}
	if int64(len(l)) != f.Chunks || manifest.Root(l).String() != etag {
		t.Fatalf("ETag %s is not the root of the layer it names", etag)
	}
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/c/%s/%s", gw.URL, sf.id, seg), nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET with the ETag: %v %v", resp.Status, err)
	}
}

// TestPagedGetThroughDaemon: a get that goes through a running daemon takes
// the root pages of a paged content from its gateway, and verifies them.
func TestPagedGetThroughDaemon(t *testing.T) {
	sf, _ := pagedSwarm(t, "paged-via", 35)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cacheDir := t.TempDir()
	h, err := sf.mem.NewHost("")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- RunDaemon(ctx, DaemonConfig{Gateway: "127.0.0.1:0", PeerConfig: PeerConfig{
			CacheDir: cacheDir, Tracker: sf.trackerURL, Origin: sf.url, Trust: manifest.NewKeySet(manifest.PublicOf(sf.key)), Host: h,
		}})
	}()
	var gw string
	waitFor(t, "the daemon to announce its gateway", func() bool {
		var ok bool
		gw, ok = runningDaemon(cacheDir)
		return ok
	})
	for _, target := range []string{sf.id.String(), sf.id.String() + "/p/f004.bin"} {
		out := filepath.Join(t.TempDir(), "out")
		res, err := Get(ctx, GetConfig{Origin: sf.url, Trust: manifest.NewKeySet(manifest.PublicOf(sf.key)), Target: target, Out: out, CacheDir: cacheDir})
		if err != nil || res.Via != gw {
			t.Fatalf("get %s: via %q, %v", target, res.Via, err)
		}
		if target == sf.id.String() {
			sameTree(t, sf.src, out)
		} else if got, want := readFile(out), readFile(filepath.Join(sf.src, "p", "f004.bin")); !bytes.Equal(got, want) {
			t.Fatal("one file of a paged content through the daemon differs")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v", err)
	}
}

func readFile(p string) []byte {
	b, _ := os.ReadFile(p)
	return b
}
