package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Errors of the tracker client. Each is wrapped with the tracker's URL.
var (
	// ErrBadTrackerURL: the base URL given to NewTrackerClient is unusable.
	ErrBadTrackerURL = errors.New("bad tracker URL")
	// ErrTrackerStatus: the tracker answered with a non-200 status.
	ErrTrackerStatus = errors.New("tracker refused announce")
	// ErrBadResponse: the tracker's 200 answer could not be decoded.
	ErrBadResponse = errors.New("bad tracker response")
)

// defaultTimeout bounds one announce when the caller's client has none, so a
// hung tracker cannot stall the Announcer forever.
const defaultTimeout = 15 * time.Second

// TrackerClient announces to one tracker over HTTP. It is safe for
// concurrent use.
type TrackerClient struct {
	base     string // base URL as given, for error messages
	announce string // full announce URL
	hc       *http.Client
}

// NewTrackerClient returns a client for the tracker at baseURL (http or
// https, e.g. "http://127.0.0.1:7070"; a path prefix is kept). A nil hc uses a
// client with a 15 s timeout.
func NewTrackerClient(baseURL string, hc *http.Client) (*TrackerClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadTrackerURL, baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w %q: scheme must be http or https", ErrBadTrackerURL, baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w %q: no host", ErrBadTrackerURL, baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w %q: must not carry a query, fragment or user info", ErrBadTrackerURL, baseURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + AnnouncePath
	u.RawPath = ""
	return &TrackerClient{base: baseURL, announce: u.String(), hc: hc}, nil
}

// URL returns the tracker's base URL as given.
func (c *TrackerClient) URL() string { return c.base }

// Announce sends req and returns the tracker's answer. The request is
// validated first, so a local bug fails fast with ErrInvalidRequest instead of
// a round trip. Errors name the tracker URL and, for a refusal, the HTTP
// status and the tracker's reason.
func (c *TrackerClient) Announce(ctx context.Context, req AnnounceRequest) (AnnounceResponse, error) {
	if err := req.Validate(); err != nil {
		return AnnounceResponse{}, fmt.Errorf("announce to tracker %s: %w", c.base, err)
	}
	body, err := marshalRequest(req)
	if err != nil {
		return AnnounceResponse{}, fmt.Errorf("announce to tracker %s: encode: %w", c.base, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.announce, bytes.NewReader(body))
	if err != nil {
		return AnnounceResponse{}, fmt.Errorf("announce to tracker %s: %w", c.base, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return AnnounceResponse{}, fmt.Errorf("announce to tracker %s: %w", c.base, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		reason, intervalS := errorReason(resp.Body)
		err := fmt.Errorf("announce to tracker %s: %w: HTTP %s: %s", c.base, &StatusError{Code: resp.StatusCode}, resp.Status, reason)
		if d := max(parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), secondsToDuration(intervalS)); d > 0 {
			err = &RetryAfterError{err: err, After: d}
		}
		return AnnounceResponse{}, err
	}
	var out AnnounceResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxRespBytes)).Decode(&out); err != nil {
		return AnnounceResponse{}, fmt.Errorf("announce to tracker %s: %w: %v", c.base, ErrBadResponse, err)
	}
	return out, nil
}

// RetryAfterError is a refusal that says when to come back: a tracker
// under overload (503) or rate-limiting this peer (429) sends a Retry-After
// header and the same as interval_s in its JSON body. It wraps the
// ErrTrackerStatus error.
type RetryAfterError struct {
	err   error
	After time.Duration // how long the tracker asks to be left alone
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.err, e.After.Round(time.Millisecond))
}

func (e *RetryAfterError) Unwrap() error { return e.err }

// RetryAfter returns how long err, an error of Announce, asks the peer to
// wait before announcing to that tracker again; 0 when it does not say.
func RetryAfter(err error) time.Duration {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After
	}
	return 0
}

// parseRetryAfter reads a Retry-After value, delay-seconds or an HTTP date
// (RFC 9110 §10.2.3); 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return secondsToDuration(float64(n))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return secondsToDuration(t.Sub(now).Seconds())
	}
	return 0
}

// errorReason extracts the "error" (and "interval_s", when to retry) of a
// JSON error body, or quotes the start of a non-JSON body (a proxy's HTML
// page, say).
func errorReason(r io.Reader) (string, float64) {
	b, _ := io.ReadAll(io.LimitReader(r, maxErrorBytes))
	var e struct {
		Error     string  `json:"error"`
		IntervalS float64 `json:"interval_s"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error, e.IntervalS
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "no reason given", 0
	}
	return fmt.Sprintf("%q", truncate(s, 200)), 0
}
