package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// statusTracker answers announces with status, counting them.
func statusTracker(t *testing.T, status int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(status)
		if status == http.StatusOK {
			_ = json.NewEncoder(w).Encode(AnnounceResponse{IntervalS: 30, Peers: []PeerInfo{{Peer: r.Host}}})
		} else {
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "no"})
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestTrackersMoveOnAndStick(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // connection refused from now on
	sick, sickN := statusTracker(t, http.StatusServiceUnavailable)
	good, goodN := statusTracker(t, http.StatusOK)
	ts, err := NewTrackers([]string{downURL, sick.URL, good.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := validRequest()
	for i := range 3 {
		if _, err := ts.Announce(context.Background(), req); err != nil {
			t.Fatalf("announce %d: %v", i, err)
		}
	}
	if ts.URL() != good.URL || sickN.Load() != 1 || goodN.Load() != 3 {
		t.Fatalf("using %s after 3 announces; the 503 tracker asked %d times, the good one %d: want the good one, 1 and 3",
			ts.URL(), sickN.Load(), goodN.Load())
	}
}

func TestTrackersRefusalIsFinal(t *testing.T) {
	refusing, _ := statusTracker(t, http.StatusForbidden)
	good, goodN := statusTracker(t, http.StatusOK)
	ts, err := NewTrackers([]string{refusing.URL, good.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.Announce(context.Background(), validRequest())
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || !errors.Is(err, ErrTrackerStatus) || goodN.Load() != 0 {
		t.Fatalf("got %v (next tracker asked %d times): want the 403, and no other tracker asked", err, goodN.Load())
	}
}

// TestTrackersRestAfterRetryAfter: a tracker that answered 503 with
// Retry-After is not asked again before that time; with every tracker
// resting or down, the error carries the rest left, and once it is over the
// tracker is asked again.
func TestTrackersRestAfterRetryAfter(t *testing.T) {
	var busyN atomic.Int32
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		busyN.Add(1)
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(busy.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	ts, err := NewTrackers([]string{busy.URL, downURL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ts.now = func() time.Time { return clock }
	if _, err := ts.Announce(context.Background(), validRequest()); RetryAfter(err) < time.Minute {
		t.Fatalf("first announce: %v (retry after %v), want the busy tracker's 60 s", err, RetryAfter(err))
	}
	clock = clock.Add(30 * time.Second)
	if _, err := ts.Announce(context.Background(), validRequest()); err == nil || busyN.Load() != 1 {
		t.Fatalf("announce 30 s later: %v; busy tracker asked %d times, want an error and still 1", err, busyN.Load())
	}
	ts.rest[1] = clock.Add(10 * time.Second) // the other one resting too
	if _, err := ts.Announce(context.Background(), validRequest()); RetryAfter(err) != 10*time.Second || busyN.Load() != 1 {
		t.Fatalf("every tracker resting: %v (retry after %v, busy asked %d times), want 10 s and nobody asked", err, RetryAfter(err), busyN.Load())
	}
	clock = clock.Add(31 * time.Second)
	ts.Announce(context.Background(), validRequest())
	if busyN.Load() != 2 {
		t.Fatalf("after the rest the busy tracker was asked %d times in all, want 2", busyN.Load())
	}
}

func TestTrackersAllDown(t *testing.T) {
	a, _ := statusTracker(t, http.StatusBadGateway)
	b, _ := statusTracker(t, http.StatusServiceUnavailable)
	ts, err := ParseTrackers(a.URL+","+b.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Announce(context.Background(), validRequest()); err == nil ||
		!strings.Contains(err.Error(), a.URL) || !strings.Contains(err.Error(), b.URL) {
		t.Fatalf("got %v: want an error naming both trackers", err)
	}
	if _, err := ParseTrackers(" , ", nil); !errors.Is(err, ErrBadTrackerURL) {
		t.Fatalf("empty list: %v, want ErrBadTrackerURL", err)
	}
}
