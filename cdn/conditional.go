package cdn

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// GetIfNoneMatch fetches layout path p (at most limit bytes) unless it still
// has ETag etag: then it returns modified false and no bytes (the origin
// answered 304 Not Modified). An empty etag fetches unconditionally. It
// makes one attempt: it serves pollers (live channel updates), whose next
// poll is the retry. The ETag returned is the response's, "" if it had
// none.
func (c *Client) GetIfNoneMatch(ctx context.Context, p, etag string, limit int64) (body []byte, newETag string, modified bool, err error) {
	u := c.base.JoinPath(p).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", false, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, "", false, fmt.Errorf("%w: GET %s: %v", ErrUnreachable, u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		return nil, etag, false, nil
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, "", false, fmt.Errorf("%w: GET %s: %s", ErrNotFound, u, resp.Status)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return nil, "", false, fmt.Errorf("%w: GET %s: %s", ErrUnreachable, u, resp.Status)
	default:
		return nil, "", false, fmt.Errorf("%w: GET %s: %s", ErrBadResponse, u, resp.Status)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	c.bytes.Add(int64(len(body)))
	if err != nil {
		return nil, "", false, fmt.Errorf("%w: GET %s: %v", ErrUnreachable, u, err)
	}
	if int64(len(body)) > limit {
		return nil, "", false, fmt.Errorf("%w: GET %s: longer than %d bytes", ErrBadResponse, u, limit)
	}
	return body, resp.Header.Get("ETag"), true, nil
}
