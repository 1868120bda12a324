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
		return AnnounceResponse{}, fmt.Errorf("announce to tracker %s: %w: HTTP %s: %s",
			c.base, &StatusError{Code: resp.StatusCode}, resp.Status, errorReason(resp.Body))
	}
	var out AnnounceResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxRespBytes)).Decode(&out); err != nil {
		return AnnounceResponse{}, fmt.Errorf("announce to tracker %s: %w: %v", c.base, ErrBadResponse, err)
	}
	return out, nil
}

// errorReason extracts the "error" of a JSON error body, or quotes the start
// of a non-JSON body (a proxy's HTML page, say).
func errorReason(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxErrorBytes))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "no reason given"
	}
	return fmt.Sprintf("%q", truncate(s, 200))
}
