package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/health"
	"github.com/shoal-cdn/shoal/layout"
)

// TestReadyzFollowsCacheAndShutdown: the gateway's /readyz is 200 for a
// running peer, 503 naming the cache while the cache cannot store chunks
// (a full disk), 200 again once it can, and 503 once shutdown begins;
// /healthz stays 200 throughout.
func TestReadyzFollowsCacheAndShutdown(t *testing.T) {
	f := newOnDemandFixture(t, func(dir string) string { return segmentedHLS(t, dir, 4) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := newOriginLog(t, f.layoutDir)
	cache := t.TempDir()
	p := f.peer(t, ctx, o, cache)
	t.Cleanup(func() { p.Close() })
	var draining atomic.Bool
	gw := httptest.NewServer(health.Route(p.readiness(&draining), p.Gateway()))
	defer gw.Close()

	get := func(path string) (int, string) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, time.Minute)
		defer rcancel()
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, gw.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 || body != "ok\n" {
		t.Fatalf("/readyz of a running peer: %d %q", code, body)
	}

	chunks := filepath.Join(cache, layout.ChunkDir)
	if err := os.RemoveAll(chunks); err != nil {
		t.Fatal(err)
	}
	// A segment request makes the cache try a write, which fails.
	get(fmt.Sprintf("/c/%s/v0/seg00001.ts", f.id))
	if code, body := get("/readyz"); code != 503 || !strings.HasPrefix(body, "not ready: cache: not writable") {
		t.Fatalf("/readyz with the cache unwritable: %d %q", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz with the cache unwritable: %d", code)
	}

	if err := os.MkdirAll(chunks, 0o755); err != nil {
		t.Fatal(err)
	}
	// The cache probes its directory again on the next write attempt.
	end := time.Now().Add(time.Minute)
	for {
		get(fmt.Sprintf("/c/%s/v0/seg00002.ts", f.id))
		code, body := get("/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("/readyz once the cache can write again: %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	draining.Store(true)
	if code, body := get("/readyz"); code != 503 || body != "not ready: peer: shutting down\n" {
		t.Fatalf("/readyz while shutting down: %d %q", code, body)
	}
}
