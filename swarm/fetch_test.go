package swarm

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/store"
)

// newIdleSession is a session that is never Run, so no lane fetches
// anything behind the test's back: only FetchFromOrigin moves chunks.
func newIdleSession(t *testing.T, h *harness, originURL string) *Session {
	t.Helper()
	st, err := store.Open(store.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := Config{Content: h.content, Store: st}
	if originURL != "" {
		if cfg.Origin, err = cdn.New(cdn.Config{BaseURL: originURL, BaseBackoff: time.Millisecond, Attempts: 1}); err != nil {
			t.Fatal(err)
		}
	}
	return NewSession("idle", cfg)
}

func TestFetchFromOriginFetchesExactlyTheRange(t *testing.T) {
	const chunk = 16 << 10
	h := newHarness(t, "direct", 51, chunk, 10*chunk+100)
	s := newIdleSession(t, h, h.originURL())
	if err := s.FetchFromOrigin(context.Background(), 2, 5); err != nil {
		t.Fatal(err)
	}
	for i := range h.content.Len() {
		if want := i >= 2 && i < 5; s.Has(i) != want {
			t.Errorf("chunk %d held = %v, want %v", i, s.Has(i), want)
		}
	}
	st := s.Stats()
	if st.BytesFromOrigin != 3*chunk || st.OriginDataReceived != 3*chunk || st.OriginRequests != 3 {
		t.Fatalf("after fetching 3 chunks: %+v", st)
	}
	// Held chunks are not fetched again; the range is clamped to the content.
	if err := s.FetchFromOrigin(context.Background(), 3, 1000); err != nil {
		t.Fatal(err)
	}
	st = s.Stats()
	if st.Have != h.content.Len()-2 {
		t.Fatalf("after fetching the tail: %+v", st)
	}
	if st.OriginRequests != 3+int64(h.content.Len()-5) {
		t.Fatalf("held chunks fetched again: %d origin requests", st.OriginRequests)
	}
	// A waiter wakes when the direct fetch lands.
	done := make(chan error, 1)
	go func() { done <- s.WaitChunk(context.Background(), 0) }()
	if err := s.FetchFromOrigin(context.Background(), 0, 2); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || !s.Stats().Complete {
		t.Fatalf("WaitChunk %v, stats %+v", err, s.Stats())
	}
	h.checkBytes(&hpeer{store: s.cfg.Store.(*store.Store)})
}

func TestFetchFromOriginNamesTheMissingChunk(t *testing.T) {
	h := newHarness(t, "direct-missing", 52, 16<<10, 40<<10)
	empty := httptest.NewServer(http.NotFoundHandler())
	defer empty.Close()
	s := newIdleSession(t, h, empty.URL)
	err := s.FetchFromOrigin(context.Background(), 0, 3)
	if !errors.Is(err, cdn.ErrNotFound) || !strings.Contains(err.Error(), "of f0.bin") {
		t.Fatalf("fetch from an origin without the chunks: %v", err)
	}
	if st := s.Stats(); st.Have != 0 || st.OriginErrors == 0 {
		t.Fatalf("after failed fetches: %+v", st)
	}
	if err := newIdleSession(t, h, "").FetchFromOrigin(context.Background(), 0, 1); !errors.Is(err, ErrNoOrigin) {
		t.Fatalf("without an origin: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.FetchFromOrigin(ctx, 0, 3); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fetch: %v", err)
	}
}
