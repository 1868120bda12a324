// Package cdn is the fallback lane's HTTP client: it reads a Shoal origin
// layout (see package layout) from `shoal origin`, nginx, S3 or any CDN in
// front of them, retrying transient failures with backoff. It checks sizes
// but not hashes: callers verify every byte against the signed manifest.
package cdn

import (
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
)

// Errors of the client.
var (
	ErrNotFound    = errors.New("not on the origin")
	ErrUnreachable = errors.New("origin unreachable")
	ErrBadResponse = errors.New("bad origin response")
)

// Config tunes a Client.
type Config struct {
	BaseURL     string        // origin or CDN URL of the layout root
	HTTP        *http.Client  // default: a client with sane timeouts
	Attempts    int           // tries per request, default 5
	BaseBackoff time.Duration // first retry delay, doubled each try with jitter; default 200ms
}

// Client fetches layout files over HTTP. It is safe for concurrent use.
type Client struct {
	base     *url.URL
	hc       *http.Client
	attempts int
	backoff  time.Duration
	bytes    atomic.Int64 // response body bytes received
}

// New checks the base URL and returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("origin URL %q: want http:// or https:// with a host", cfg.BaseURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	c := &Client{base: u, hc: cfg.HTTP, attempts: cfg.Attempts, backoff: cfg.BaseBackoff}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32
		t.ResponseHeaderTimeout = 30 * time.Second
		c.hc = &http.Client{Transport: t}
	}
	if c.attempts <= 0 {
		c.attempts = 5
	}
	if c.backoff <= 0 {
		c.backoff = 200 * time.Millisecond
	}
	return c, nil
}

// Close drops idle connections, so an origin shutting down does not wait
// for connections this client dialled but never used.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// BaseURL is the layout root the client reads.
func (c *Client) BaseURL() string { return c.base.String() }

// BytesFetched is the total of response body bytes received.
func (c *Client) BytesFetched() int64 { return c.bytes.Load() }

// Manifest fetches the signed manifest bytes of id.
func (c *Client) Manifest(ctx context.Context, id core.ContentID) ([]byte, error) {
	return c.get(ctx, layout.ManifestPath(id), -1, 64<<20)
}

// HashLayer fetches the hash layer of root, which must be exactly size bytes.
func (c *Client) HashLayer(ctx context.Context, root core.Hash, size int64) ([]byte, error) {
	return c.get(ctx, layout.HashLayerPath(root), size, size)
}

// RootPage fetches the root page whose SHA-256 is h, which must be exactly
// size bytes.
func (c *Client) RootPage(ctx context.Context, h core.Hash, size int64) ([]byte, error) {
	return c.get(ctx, layout.RootPagePath(h), size, size)
}

// Chunk fetches chunk h, which must be exactly size bytes.
func (c *Client) Chunk(ctx context.Context, h core.Hash, size int64) ([]byte, error) {
	return c.get(ctx, layout.ChunkPath(h), size, size)
}

// Get fetches any layout path (for example a live channel's files) of at most
// limit bytes.
func (c *Client) Get(ctx context.Context, p string, limit int64) ([]byte, error) {
	return c.get(ctx, p, -1, limit)
}

// get fetches p, retrying what may pass (network errors, 5xx, 429). want is
// the exact size expected, or -1.
func (c *Client) get(ctx context.Context, p string, want, limit int64) ([]byte, error) {
	u := c.base.JoinPath(p).String()
	var lastErr error
	for attempt := 0; attempt < c.attempts; attempt++ {
		if attempt > 0 {
			d := c.backoff << (attempt - 1)
			d += time.Duration(rand.Int64N(int64(d)/2 + 1))
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("%w: %s: %v (last error: %v)", ErrUnreachable, u, ctx.Err(), lastErr)
			case <-t.C:
			}
		}
		b, retry, err := c.once(ctx, u, want, limit)
		if err == nil {
			return b, nil
		}
		lastErr = err
		if !retry || ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w after %d attempts: %v", ErrUnreachable, c.attempts, lastErr)
}

func (c *Client) once(ctx context.Context, u string, want, limit int64) (b []byte, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, true, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, false, fmt.Errorf("%w: GET %s: %s", ErrNotFound, u, resp.Status)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return nil, true, fmt.Errorf("GET %s: %s", u, resp.Status)
	default:
		return nil, false, fmt.Errorf("%w: GET %s: %s", ErrBadResponse, u, resp.Status)
	}
	if want >= 0 && resp.ContentLength >= 0 && resp.ContentLength != want {
		return nil, false, fmt.Errorf("%w: GET %s: %d bytes, want %d", ErrBadResponse, u, resp.ContentLength, want)
	}
	var buf []byte
	if want >= 0 {
		buf = make([]byte, want)
		n, err := io.ReadFull(resp.Body, buf)
		c.bytes.Add(int64(n))
		if err != nil {
			return nil, true, fmt.Errorf("GET %s: body after %d of %d bytes: %w", u, n, want, err)
		}
		if extra, _ := resp.Body.Read(make([]byte, 1)); extra > 0 {
			return nil, false, fmt.Errorf("%w: GET %s: longer than %d bytes", ErrBadResponse, u, want)
		}
		return buf, false, nil
	}
	// A gzip-encoded body (manifests, see package origin) is decoded by the
	// transport as it is read: the limit bounds the decoded bytes, so a
	// small compressed body cannot inflate past it.
	coded := ""
	if resp.Uncompressed {
		coded = " once gzip-decoded"
	}
	buf, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	c.bytes.Add(int64(len(buf)))
	if err != nil {
		if badEncoding(err) {
			// The origin sent what it sent: asking again would not help.
			return nil, false, fmt.Errorf("%w: GET %s: gzip-encoded body does not decode: %v", ErrBadResponse, u, err)
		}
		return nil, true, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(buf)) > limit {
		return nil, false, fmt.Errorf("%w: GET %s: longer than %d bytes%s", ErrBadResponse, u, limit, coded)
	}
	return buf, false, nil
}

// badEncoding says whether err is a gzip body that is not gzip (a bad
// header, corrupt deflate data, a checksum or length that disagrees), as
// opposed to a connection that broke while it was read.
func badEncoding(err error) bool {
	var corrupt flate.CorruptInputError
	return errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.As(err, &corrupt)
}
