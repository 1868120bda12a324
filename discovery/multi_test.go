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
