package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestClientReadsRetryAfter: a 503 or 429 with Retry-After (seconds or an
// HTTP date) or interval_s in the body comes back as a RetryAfterError that
// still is ErrTrackerStatus and still quotes the tracker's reason.
func TestClientReadsRetryAfter(t *testing.T) {
	cases := []struct {
		name   string
		status int
		header string
		body   string
		want   time.Duration
	}{
		{"overloaded", 503, "12", `{"error":"tracker overloaded","interval_s":12.5}`, 12500 * time.Millisecond},
		{"rate limited, header only", 429, "7", `{"error":"rate limit"}`, 7 * time.Second},
		{"body only", 503, "", `{"error":"tracker full","interval_s":3}`, 3 * time.Second},
		{"http date", 503, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), `{"error":"later"}`, 59 * time.Minute},
		{"none", 503, "", `{"error":"down"}`, 0},
		{"garbage", 503, "soon", `{"error":"down","interval_s":-4}`, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.header != "" {
					w.Header().Set("Retry-After", c.header)
				}
				w.WriteHeader(c.status)
				fmt.Fprint(w, c.body)
			}))
			defer srv.Close()
			cl, _ := NewTrackerClient(srv.URL, srv.Client())
			_, err := cl.Announce(context.Background(), validRequest())
			if !errors.Is(err, ErrTrackerStatus) {
				t.Fatalf("Announce = %v, want ErrTrackerStatus", err)
			}
			got := RetryAfter(err)
			if c.want == 0 && got != 0 || c.want != 0 && (got < c.want || got > c.want+time.Minute) {
				t.Fatalf("RetryAfter = %v, want %v (error %v)", got, c.want, err)
			}
		})
	}
}

// TestAnnouncerHonoursRetryAfter: after a refusal that says "retry after
// 30 s", the announcer's next announce to that tracker comes no sooner,
// and not in lock-step (jitter up to half again), however short its own
// backoff. Runs on synctest's fake clock: the assertion is on the clock the
// announcer's timer uses, not on a measured wall time.
func TestAnnouncerHonoursRetryAfter(t *testing.T) {
	const ra = 30 * time.Second
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex // guards at
		var at []time.Time
		f := &fakeTracker{reply: func(n int, _ AnnounceRequest) (AnnounceResponse, error) {
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
			if n == 1 {
				return AnnounceResponse{}, &RetryAfterError{err: fmt.Errorf("%w: HTTP 503: tracker overloaded", ErrTrackerStatus), After: ra}
			}
			return AnnounceResponse{IntervalS: 3600}, nil
		}}
		cfg := fastConfig(f)
		cfg.MaxInterval = time.Hour
		a, err := NewAnnouncer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		time.Sleep(2 * time.Minute) // fake time: every timer before it fires
		synctest.Wait()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(at) < 2 {
			t.Fatalf("%d announces, want the refused one and a retry", len(at))
		}
		if d := at[1].Sub(at[0]); d < ra || d > ra+ra/2 {
			t.Fatalf("retried %v after a Retry-After of %v, want within [%v, %v]", d, ra, ra, ra+ra/2)
		}
	})
}

// TestRetryWaitIsJittered: many peers refused together spread their
// returns over [ra, 1.5 ra] rather than coming back in the same instant.
func TestRetryWaitIsJittered(t *testing.T) {
	a, err := NewAnnouncer(fastConfig(&fakeTracker{}))
	if err != nil {
		t.Fatal(err)
	}
	a.cfg.MaxInterval = time.Hour
	ra := &RetryAfterError{err: ErrTrackerStatus, After: 10 * time.Second}
	seen := map[time.Duration]bool{}
	for range 100 {
		w := a.retryWait(1, ra)
		if w < 10*time.Second || w > 15*time.Second {
			t.Fatalf("retryWait = %v, want within [10s, 15s]", w)
		}
		seen[w] = true
	}
	if len(seen) < 50 {
		t.Fatalf("only %d distinct waits in 100: not jittered", len(seen))
	}
	a.cfg.MaxInterval = 5 * time.Second
	if w := a.retryWait(1, &RetryAfterError{err: ErrTrackerStatus, After: 24 * time.Hour}); w > 8*time.Second {
		t.Fatalf("a day's Retry-After made the announcer wait %v, want it capped near MaxInterval 5s", w)
	}
}
