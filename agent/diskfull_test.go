package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/layout"
)

// TestGatewayAnswers503WhileCacheCannotStore: while the peer's cache
// cannot write chunks (here its chunk directory is gone: any write error
// counts, as a full disk does), playlists and segments are answered 503
// with one line saying so, at once; once the cache can write again the same
// requests are served, byte for byte, by the same peer.
func TestGatewayAnswers503WhileCacheCannotStore(t *testing.T) {
	f := newOnDemandFixture(t, func(dir string) string { return segmentedHLS(t, dir, 6) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := newOriginLog(t, f.layoutDir)
	cache := t.TempDir()
	p := f.peer(t, ctx, o, cache)
	t.Cleanup(func() { p.Close() })
	gw := httptest.NewServer(p.Gateway())
	defer gw.Close()
	base := fmt.Sprintf("%s/c/%s/", gw.URL, f.id)
	chunks := filepath.Join(cache, layout.ChunkDir)
	if err := os.RemoveAll(chunks); err != nil {
		t.Fatal(err)
	}

	get := func(path string) (int, []byte) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, time.Minute)
		defer rcancel()
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: body: %v", path, err)
		}
		return resp.StatusCode, b
	}
	entry, seg := f.m.Media.Entry, "v0/seg00002.ts"
	for _, path := range []string{entry, seg, entry} {
		code, body := get(path)
		if code != http.StatusServiceUnavailable {
			t.Fatalf("GET %s with the cache unwritable: %d %q, want 503", path, code, body)
		}
		line := strings.TrimSuffix(string(body), "\n")
		if !strings.Contains(line, "cache write failed") || strings.Contains(line, "\n") {
			t.Errorf("GET %s: body %q, want one line saying the cache write failed", path, body)
		}
	}
	if p.cache.chunks.WriteErr() == nil {
		t.Error("the store is not marked unwritable")
	}

	if err := os.MkdirAll(chunks, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{entry, seg} {
		want, err := os.ReadFile(filepath.Join(f.src, filepath.FromSlash(path)))
		if err != nil {
			t.Fatal(err)
		}
		end := time.Now().Add(time.Minute)
		for {
			code, body := get(path)
			if code == http.StatusOK {
				if !bytes.Equal(body, want) {
					t.Fatalf("GET %s after recovery: %d bytes differ from the source's %d", path, len(body), len(want))
				}
				break
			}
			if code != http.StatusServiceUnavailable || time.Now().After(end) {
				t.Fatalf("GET %s once the cache can write again: %d %q", path, code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
