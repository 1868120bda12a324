package agent

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/store"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// A get on the cache directory of a running peer daemon goes through the
// daemon's gateway (the cache is the daemon's), for a whole content and for
// one file, and what it writes is what was published.
func TestGetGoesThroughRunningDaemon(t *testing.T) {
	sf := newSwarmFixture(t, 0, map[string]int{"a.bin": 5*testChunk + 123, "d/b.txt": 10, "d/c.bin": 2 * testChunk})
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
	get := func(target, out string) GetResult {
		t.Helper()
		res, err := Get(ctx, GetConfig{Origin: sf.url, Trust: manifest.NewKeySet(manifest.PublicOf(sf.key)), Target: target, Out: out, CacheDir: cacheDir})
		if err != nil {
			t.Fatalf("get %s: %v", target, err)
		}
		if res.Via != gw {
			t.Fatalf("get %s went via %q, want the daemon at %s", target, res.Via, gw)
		}
		return res
	}
	out := filepath.Join(t.TempDir(), "all")
	get(sf.id.String(), out)
	sameTree(t, sf.src, out)
	one := filepath.Join(t.TempDir(), "c.bin")
	res := get(sf.id.String()+"/d/c.bin", one)
	want, _ := os.ReadFile(filepath.Join(sf.src, "d", "c.bin"))
	if got, _ := os.ReadFile(one); !bytes.Equal(got, want) || res.Files != 1 || res.Bytes != int64(len(want)) {
		t.Fatalf("one file through the daemon: %d bytes, result %+v", len(got), res)
	}
	// A get trusting another publisher refuses the daemon's manifest.
	other := manifest.PublicOf(publishTree(t, "other", 3, map[string]int{"x": 1}).key)
	if _, err := Get(ctx, GetConfig{Trust: manifest.NewKeySet(other), Target: sf.id.String(), Out: filepath.Join(t.TempDir(), "no"), CacheDir: cacheDir}); !errors.Is(err, manifest.ErrUntrusted) && !errors.Is(err, manifest.ErrBadSignature) {
		t.Fatalf("get with another trust key through the daemon = %v, want a trust error", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, daemonFile)); !os.IsNotExist(err) {
		t.Fatalf("%s left after the daemon stopped: %v", daemonFile, err)
	}
	// With the daemon gone, the same get runs on the cache itself.
	out2 := filepath.Join(t.TempDir(), "again")
	res, err = Get(context.Background(), GetConfig{Origin: sf.url, Trust: manifest.NewKeySet(manifest.PublicOf(sf.key)), Target: sf.id.String(), Out: out2, CacheDir: cacheDir})
	if err != nil || res.Via != "" {
		t.Fatalf("get after the daemon stopped: via %q, %v", res.Via, err)
	}
	sameTree(t, sf.src, out2)
}

// fakeDaemon is a daemon gateway for fx: its signed manifest as published,
// and body as its a.bin.
func fakeDaemon(t *testing.T, fx *fixture, body []byte) *httptest.Server {
	t.Helper()
	manifestBytes, err := os.ReadFile(filepath.Join(fx.layoutDir, layout.ManifestPath(fx.id)))
	if err != nil {
		t.Fatal(err)
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/manifest/" + fx.id.String():
			w.Write(manifestBytes)
		case "/c/" + fx.id.String() + "/a.bin":
			w.Write(body)
		default:
			http.NotFound(w, r)
		}
	}))
}

// A daemon gateway that serves bytes other than those published is caught
// by the Merkle root, and nothing is left at the output. A daemon file left
// by a dead daemon (nobody holds the cache) is ignored.
func TestGetThroughDaemonVerifies(t *testing.T) {
	fx := publishTree(t, "lie", 5, map[string]int{"a.bin": 3*testChunk + 7})
	want, _ := os.ReadFile(filepath.Join(fx.src, "a.bin"))
	bad := bytes.Clone(want)
	bad[2*testChunk+1] ^= 1
	liar := fakeDaemon(t, fx, bad)
	defer liar.Close()
	cacheDir := t.TempDir()
	if _, err := announceDaemon(cacheDir, liar.URL); err != nil {
		t.Fatal(err)
	}
	// Dead daemon: nothing holds the cache, so the get uses it directly.
	out := filepath.Join(t.TempDir(), "a.bin")
	res, err := Get(context.Background(), GetConfig{Origin: fx.url, Trust: manifest.NewKeySet(manifest.PublicOf(fx.key)), Target: fx.id.String(), Out: out, CacheDir: cacheDir})
	if err != nil || res.Via != "" {
		t.Fatalf("get beside a stale daemon file: via %q, %v", res.Via, err)
	}
	// A live (lying) daemon: the store is held, as a daemon holds it.
	s, err := store.Open(store.Config{Dir: filepath.Join(cacheDir, layout.ChunkDir)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out = filepath.Join(t.TempDir(), "b.bin")
	_, err = Get(context.Background(), GetConfig{Trust: manifest.NewKeySet(manifest.PublicOf(fx.key)), Target: fx.id.String(), Out: out, CacheDir: cacheDir})
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("get through a lying daemon = %v, want ErrVerify", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("output left after a failed verification: %v", err)
	}
}

// A get whose cache is held by a daemon that has not yet left its address
// waits for it briefly and goes through it; a cache held by something that
// is not a daemon is a clear error naming the way out.
func TestGetWaitsForStartingDaemon(t *testing.T) {
	fx := publishTree(t, "starting", 6, map[string]int{"a.bin": 2*testChunk + 3})
	want, _ := os.ReadFile(filepath.Join(fx.src, "a.bin"))
	gw := fakeDaemon(t, fx, want)
	defer gw.Close()
	cacheDir := t.TempDir()
	s, err := store.Open(store.Config{Dir: filepath.Join(cacheDir, layout.ChunkDir)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(out string) (GetResult, error) {
		return Get(context.Background(), GetConfig{Origin: fx.url, Trust: manifest.NewKeySet(manifest.PublicOf(fx.key)), Target: fx.id.String(), Out: out, CacheDir: cacheDir})
	}
	defer func(d time.Duration) { daemonStartWait = d }(daemonStartWait)
	daemonStartWait = 0
	if _, err := get(filepath.Join(t.TempDir(), "x")); !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "--cache") {
		t.Fatalf("get on a cache held by a non-daemon = %v, want ErrLocked naming --cache", err)
	}
	// Generous, so the test never depends on how fast the machine is: the
	// get returns as soon as the address appears.
	daemonStartWait = time.Minute
	go func() {
		time.Sleep(300 * time.Millisecond) // the daemon is still starting
		announceDaemon(cacheDir, gw.URL)
	}()
	out := filepath.Join(t.TempDir(), "a.bin")
	res, err := get(out)
	if err != nil || res.Via != gw.URL {
		t.Fatalf("get while a daemon starts: via %q, %v", res.Via, err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Fatalf("output differs (%d bytes)", len(got))
	}
}

func TestParseOriginAssist(t *testing.T) {
	for in, want := range map[string]float64{"": 0, "off": 0, "0": 0, "0.3": 0.3, "2": 2, "max": -1} {
		if got, err := ParseOriginAssist(in); err != nil || got != want {
			t.Errorf("ParseOriginAssist(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-0.5", "lots", "NaN", "+Inf"} {
		if _, err := ParseOriginAssist(in); !errors.Is(err, ErrBadInput) {
			t.Errorf("ParseOriginAssist(%q) = %v, want ErrBadInput", in, err)
		}
	}
	if b := policy.AssistBudget(0.25, 1000); b != 250 {
		t.Errorf("policy.AssistBudget(0.25, 1000) = %d, want 250", b)
	}
	if b := policy.AssistBudget(-1, 1000); b != 0 {
		t.Errorf("AssistBudget(max) = %d, want 0 (no cap)", b)
	}
}
