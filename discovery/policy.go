package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/control"
)

// ErrNoPolicy: the tracker serves no operator policy (it has no operator
// key). Asking again soon is pointless; a peer still learns a policy from
// announce answers and gossip if one is set up later.
var ErrNoPolicy = errors.New("tracker serves no operator policy")

// policyPollSlack is how much longer than PolicyWait a long poll may take
// in all before the client gives up on the tracker.
const policyPollSlack = 15 * time.Second

// Policy is one long poll of the tracker's operator policy: it returns the
// policy's encoding (for control.Decode with the peer's operator keys) as
// soon as the tracker holds one with a serial above after, or (nil, nil)
// when the tracker's wait (PolicyWait) ends first. A tracker without
// operator keys answers ErrNoPolicy; a refusal that says when to come back
// (429, 503) is a RetryAfterError, as for announces.
func (c *TrackerClient) Policy(ctx context.Context, after uint64) ([]byte, error) {
	u, err := url.Parse(c.announce)
	if err != nil {
		return nil, fmt.Errorf("policy from tracker %s: %w", c.base, err)
	}
	u.Path = strings.TrimSuffix(u.Path, AnnouncePath) + PolicyPath
	u.RawQuery = "after=" + strconv.FormatUint(after, 10)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("policy from tracker %s: %w", c.base, err)
	}
	// The client's own timeout is for announces; a long poll is held up to
	// PolicyWait by design.
	hc := *c.hc
	if hc.Timeout != 0 && hc.Timeout < PolicyWait+policyPollSlack {
		hc.Timeout = PolicyWait + policyPollSlack
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("policy from tracker %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		b, err := io.ReadAll(io.LimitReader(resp.Body, control.MaxSize+1))
		if err != nil {
			return nil, fmt.Errorf("policy from tracker %s: %w", c.base, err)
		}
		if len(b) > control.MaxSize {
			return nil, fmt.Errorf("policy from tracker %s: %w: larger than %d bytes", c.base, ErrBadResponse, control.MaxSize)
		}
		return b, nil
	case http.StatusNoContent:
		return nil, nil
	}
	reason, intervalS := errorReason(resp.Body)
	err = fmt.Errorf("policy from tracker %s: %w: HTTP %s: %s", c.base, &StatusError{Code: resp.StatusCode}, resp.Status, reason)
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %w", ErrNoPolicy, err)
	}
	if d := max(parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), secondsToDuration(intervalS)); d > 0 {
		err = &RetryAfterError{err: err, After: d}
	}
	return nil, err
}

// Policy is one long poll (see TrackerClient.Policy) of the tracker in use,
// or of the next ones in turn when it fails; without the per-tracker
// timeout of announces, since the tracker holds it by design. A tracker
// refusing the poll with a Retry-After (too many held) is not rested for
// announces: the caller honours RetryAfter(err) for its next poll.
func (t *Trackers) Policy(ctx context.Context, after uint64) ([]byte, error) {
	var b []byte
	err := t.tryFor(ctx, 0, false, func(ctx context.Context, c *TrackerClient) error {
		var err error
		b, err = c.Policy(ctx, after)
		return err
	})
	return b, err
}
