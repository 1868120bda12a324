package swarm

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/store"
)

// countingOrigin serves h's origin (or, with fail, 500 for everything) and
// counts the requests.
func countingOrigin(t *testing.T, h *harness, fail bool) (url string, n *atomic.Int64) {
	t.Helper()
	n = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if fail {
			http.Error(w, "origin in trouble", http.StatusInternalServerError)
			return
		}
		h.origin.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, n
}

// runSession runs an on-demand session of h's content on st with the
// given origin, until the test ends.
func runSession(t *testing.T, h *harness, st *store.Store, originURL string) *Session {
	t.Helper()
	oc, err := cdn.New(cdn.Config{BaseURL: originURL, BaseBackoff: time.Millisecond, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSession("solo", Config{Content: h.content, Store: st, Origin: oc, OnDemand: true, Grace: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// quiet waits (up to a minute) until n has not moved for a second, and
// returns its value.
func quiet(t *testing.T, n *atomic.Int64) int64 {
	t.Helper()
	end := time.Now().Add(time.Minute)
	last, since := n.Load(), time.Now()
	for time.Since(since) < time.Second {
		if time.Now().After(end) {
			t.Fatalf("origin requests still growing after a minute: %d", n.Load())
		}
		time.Sleep(50 * time.Millisecond)
		if v := n.Load(); v != last {
			last, since = v, time.Now()
		}
	}
	return last
}

// TestUnwritableStoreStallsFetchingAndFailsReaders: when the store cannot
// write (its directory is gone: any write error counts, as a full disk
// does), a reader waiting for a chunk is told so at once instead of
// waiting, the session stops asking the origin, and once the store can
// write again the same chunk is fetched and held, without a restart.
func TestUnwritableStoreStallsFetchingAndFailsReaders(t *testing.T) {
	const chunk = 16 << 10
	h := newHarness(t, "stall", 61, chunk, 64*chunk)
	url, reqs := countingOrigin(t, h, false)
	dir := t.TempDir()
	st, err := store.Open(store.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := runSession(t, h, st, url)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}

	in := s.Want(Range{From: 0, To: h.content.Len()})
	defer in.Release()
	s.Prioritize(0, h.content.Len(), time.Now(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = s.WaitChunk(ctx, 0)
	if !errors.Is(err, store.ErrWriteFailed) {
		t.Fatalf("WaitChunk with the store unwritable: %v, want store.ErrWriteFailed", err)
	}
	if ctx.Err() != nil {
		t.Fatal("WaitChunk waited for its deadline instead of failing")
	}
	if s.Stalled() == nil {
		t.Error("session not stalled after a failed store")
	}
	// Once the requests in flight at the failure are done, none follows,
	// though every chunk is still wanted and due.
	n := quiet(t, reqs)
	t.Logf("origin requests until the stall: %d of %d chunks", n, h.content.Len())
	if n > 2*DefaultOriginRequests {
		t.Errorf("%d origin requests before fetching stopped; want at most %d", n, 2*DefaultOriginRequests)
	}
	for range 20 { // two seconds of ticks: still nothing
		time.Sleep(100 * time.Millisecond)
		if err := s.WaitChunk(ctx, 0); !errors.Is(err, store.ErrWriteFailed) {
			t.Fatalf("WaitChunk while still unwritable: %v", err)
		}
	}
	if got := reqs.Load(); got != n {
		t.Errorf("origin requests went from %d to %d while the store was unwritable", n, got)
	}

	// The store can write again: the session notices by itself.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for {
		err := s.WaitChunk(ctx, 0)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrWriteFailed) {
			t.Fatalf("WaitChunk after the store recovered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s.Stalled() != nil {
		t.Errorf("chunk held but session still stalled: %v", s.Stalled())
	}
	b, err := st.Get(h.content.Hash(0))
	if err != nil || string(b) != string(h.data["f0.bin"][:chunk]) {
		t.Fatalf("chunk 0 after recovery: %v", err)
	}
}

// TestFailingOriginBacksOff: an origin that fails every request is asked
// less and less often, not at the rate the lane could go.
func TestFailingOriginBacksOff(t *testing.T) {
	const chunk = 16 << 10
	h := newHarness(t, "backoff", 62, chunk, 256*chunk)
	url, reqs := countingOrigin(t, h, true)
	st, err := store.Open(store.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := runSession(t, h, st, url)
	in := s.Want(Range{From: 0, To: h.content.Len()})
	defer in.Release()
	s.Prioritize(0, h.content.Len(), time.Now(), 0)
	// Over 6 s the peer-wide back-off (1 s, 2 s, 4 s, with ±25% jitter)
	// admits at most 4 rounds of at most OriginParallel (4) requests.
	// Without back-off the lane would make hundreds.
	const window = 6 * time.Second
	start := time.Now()
	for time.Since(start) < window {
		time.Sleep(100 * time.Millisecond)
	}
	n := reqs.Load()
	t.Logf("failing origin: %d requests in %v", n, window)
	if n == 0 {
		t.Fatal("no origin request at all")
	}
	if n > 16 {
		t.Errorf("%d requests to an origin failing everything in %v; want at most 16", n, window)
	}
}

// TestOriginGateCapsAndBacksOff: the gate admits at most max requests,
// none while backing off (doubling per consecutive failure, capped, with
// jitter), fails direct requests fast meanwhile, and a success ends it.
func TestOriginGateCapsAndBacksOff(t *testing.T) {
	clock := &core.ManualClock{T: time.Unix(1e9, 0)}
	g := NewOriginGate(3, clock)
	now := clock.Now()
	for i := range 3 {
		if !g.TryAcquire(now) {
			t.Fatalf("slot %d refused under the cap of 3", i)
		}
	}
	if g.TryAcquire(now) {
		t.Fatal("a 4th slot admitted with a cap of 3")
	}
	// A blocked Acquire gets the slot a Release frees.
	got := make(chan error, 1)
	go func() { got <- g.Acquire(context.Background()) }()
	g.Release(now, nil)
	if err := <-got; err != nil {
		t.Fatalf("Acquire after a release: %v", err)
	}
	g.Release(now, nil)
	g.Release(now, nil)
	g.Release(now, nil)

	boom := errors.New("500 from the origin")
	delay := originBackoffFirst
	for round := range 8 {
		if !g.TryAcquire(clock.Now()) {
			t.Fatalf("round %d: refused before any failure of this round", round)
		}
		g.Release(clock.Now(), boom)
		if g.TryAcquire(clock.Now().Add(delay * 3 / 4 * 99 / 100)) {
			t.Fatalf("round %d: admitted before the back-off of about %v", round, delay)
		}
		err := g.Acquire(context.Background())
		if !errors.Is(err, ErrOriginBackoff) || !errors.Is(err, boom) {
			t.Fatalf("round %d: Acquire while backing off: %v, want ErrOriginBackoff naming the failure", round, err)
		}
		clock.Advance(delay*5/4 + time.Millisecond)
		delay = min(2*delay, originBackoffMax)
	}
	if !g.TryAcquire(clock.Now()) {
		t.Fatal("refused after the back-off")
	}
	g.Release(clock.Now(), nil) // a success ends the back-off at once
	if !g.TryAcquire(clock.Now()) {
		t.Fatal("refused after a success")
	}
	g.ReleaseNeutral()
}
