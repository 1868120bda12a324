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
// it. A tracker that refused with a Retry-After (overloaded, or its store
// down) is left alone for that long: the others are asked meanwhile, and
// when every tracker is resting Announce fails at once with the shortest
// rest left, which the announcer honours. It is safe for concurrent use.
type Trackers struct {
	clients []*TrackerClient
	timeout time.Duration    // per attempt when there are several
	now     func() time.Time // the clock rests are judged on

	mu   sync.Mutex  // guards cur and rest
	cur  int         // the tracker that answered last
	rest []time.Time // per tracker: not asked again before this
}

var _ AnnounceClient = (*Trackers)(nil)

// NewTrackers returns a client for the trackers at urls, tried in that
// order. A nil hc gives each a client with a 15 s timeout.
func NewTrackers(urls []string, hc *http.Client) (*Trackers, error) {
	t := &Trackers{timeout: perTrackerTimeout, now: time.Now}
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
	t.rest = make([]time.Time, len(t.clients))
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
	return t.tryFor(ctx, t.timeout, true, do)
}

// tryFor is try with per-attempt timeout (0: none, for a long poll), and
// the Retry-After of a refusal noted as the tracker's rest only if
// noteRest: a tracker refusing a long poll may still take announces.
func (t *Trackers) tryFor(ctx context.Context, timeout time.Duration, noteRest bool, do func(context.Context, *TrackerClient) error) error {
	t.mu.Lock()
	start, now := t.cur, t.now()
	n := len(t.clients)
	order := make([]int, 0, n)
	var soonest time.Time
	for i := range n {
		k := (start + i) % n
		if now.Before(t.rest[k]) {
			if soonest.IsZero() || t.rest[k].Before(soonest) {
				soonest = t.rest[k]
			}
			continue
		}
		order = append(order, k)
	}
	t.mu.Unlock()
	if len(order) == 0 {
		return &RetryAfterError{
			err:   fmt.Errorf("%w: every tracker asked to be left alone for a while", ErrTrackerStatus),
			After: soonest.Sub(now),
		}
	}
	var errs []error
	for _, k := range order {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if len(order) > 1 && timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, timeout)
		}
		err := do(actx, t.clients[k])
		cancel()
		if err == nil {
			t.mu.Lock()
			t.cur = k
			t.mu.Unlock()
			return nil
		}
		if d := RetryAfter(err); d > 0 && noteRest {
			t.mu.Lock()
			t.rest[k] = t.now().Add(d)
			t.mu.Unlock()
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
