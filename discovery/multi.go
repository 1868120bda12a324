package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// StatusError is a tracker's non-200 answer. errors.Is(err,
// ErrTrackerStatus) holds for it; Code tells a refusal of the request (4xx:
// every replica would refuse it) from a tracker in trouble (5xx).
type StatusError struct{ Code int }

func (e *StatusError) Error() string        { return ErrTrackerStatus.Error() }
func (e *StatusError) Is(target error) bool { return target == ErrTrackerStatus }

// perTrackerTimeout bounds one attempt on one tracker of several, so a
// replica that hangs costs a peer seconds before it moves to the next, not
// the 15 s a lone tracker gets.
const perTrackerTimeout = 5 * time.Second

// Trackers announces to the first tracker of a list that answers: replicas
// of one tracker (sharing their state, see the tracker's --redis) or
// trackers behind different load balancers. It sticks to the tracker that
// answered last and moves to the next in turn when that one fails (an
// error, a timeout or a 5xx status), wrapping round once. A 4xx refusal is
// returned at once: the request is at fault, and any replica would refuse
// it. It is safe for concurrent use.
type Trackers struct {
	clients []*TrackerClient
	timeout time.Duration // per attempt when there are several

	mu  sync.Mutex // guards cur
	cur int        // the tracker that answered last
}

var _ AnnounceClient = (*Trackers)(nil)

// NewTrackers returns a client for the trackers at urls, tried in that
// order. A nil hc gives each a client with a 15 s timeout.
func NewTrackers(urls []string, hc *http.Client) (*Trackers, error) {
	t := &Trackers{timeout: perTrackerTimeout}
	for _, u := range urls {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		c, err := NewTrackerClient(u, hc)
		if err != nil {
			return nil, err
		}
		t.clients = append(t.clients, c)
	}
	if len(t.clients) == 0 {
		return nil, fmt.Errorf("%w: no tracker URL in %q", ErrBadTrackerURL, strings.Join(urls, ","))
	}
	return t, nil
}

// ParseTrackers is NewTrackers for a comma-separated list, as --tracker
// takes it.
func ParseTrackers(list string, hc *http.Client) (*Trackers, error) {
	return NewTrackers(strings.Split(list, ","), hc)
}

// URL returns the base URL of the tracker in use.
func (t *Trackers) URL() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.clients[t.cur].URL()
}

// Announce sends req to the tracker in use, or to the next ones in turn.
func (t *Trackers) Announce(ctx context.Context, req AnnounceRequest) (AnnounceResponse, error) {
	var resp AnnounceResponse
	err := t.try(ctx, func(ctx context.Context, c *TrackerClient) error {
		var err error
		resp, err = c.Announce(ctx, req)
		return err
	})
	return resp, err
}

// Report sends r to the tracker in use, or to the next ones in turn.
func (t *Trackers) Report(ctx context.Context, r Report) error {
	return t.try(ctx, func(ctx context.Context, c *TrackerClient) error { return c.Report(ctx, r) })
}

func (t *Trackers) try(ctx context.Context, do func(context.Context, *TrackerClient) error) error {
	t.mu.Lock()
	start := t.cur
	t.mu.Unlock()
	n := len(t.clients)
	var errs []error
	for i := range n {
		k := (start + i) % n
		actx, cancel := ctx, context.CancelFunc(func() {})
		if n > 1 {
			actx, cancel = context.WithTimeout(ctx, t.timeout)
		}
		err := do(actx, t.clients[k])
		cancel()
		if err == nil {
			t.mu.Lock()
			t.cur = k
			t.mu.Unlock()
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || !movesOn(err) {
			break
		}
	}
	return errors.Join(errs...)
}

// movesOn reports whether err is the tracker's trouble rather than the
// request's: worth asking the next tracker.
func movesOn(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code >= 500
	}
	return !errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrReportRefused)
}
