package origin

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Manifests are JSON, and mostly hex roots and repetitive paths and types:
// gzip sends a quarter of the bytes, which a viewer joining a content of
// thousands of files waits for before its first playlist byte. They are
// immutable, so each is compressed once and kept (up to gzipCacheBytes).
// nginx and CDNs do the same with `gzip_types application/json`.
const (
	gzipCacheBytes = 64 << 20
	maxGzipSource  = 64 << 20 // larger manifests are sent as they are
	minGzipSource  = 8 << 10  // smaller ones gain less than a round trip's worth
)

// gzipCache holds compressed manifests by layout name.
type gzipCache struct {
	mu    sync.Mutex
	byKey map[string][]byte // guarded by mu
	size  int               // guarded by mu: bytes held
}

func (c *gzipCache) get(name string, f io.Reader, n int64) ([]byte, bool) {
	c.mu.Lock()
	b, ok := c.byKey[name]
	c.mu.Unlock()
	if ok {
		return b, true
	}
	if n > maxGzipSource || n < minGzipSource {
		return nil, false
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := io.Copy(zw, io.LimitReader(f, n)); err != nil {
		return nil, false
	}
	if zw.Close() != nil {
		return nil, false
	}
	b = buf.Bytes()
	if int64(len(b)) >= n {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil || c.size+len(b) > gzipCacheBytes {
		c.byKey, c.size = map[string][]byte{}, 0 // immutable: starting over is always correct
	}
	c.byKey[name] = b
	c.size += len(b)
	return b, true
}

// acceptsGzip reports whether a request may get a gzip-encoded whole body:
// it accepts gzip and asks for no range (ranges address the stored bytes).
func acceptsGzip(r *http.Request) bool {
	if r.Header.Get("Range") != "" {
		return false
	}
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// serveGzip answers with the compressed representation of name.
func serveGzip(w http.ResponseWriter, r *http.Request, etag string, mod time.Time, b []byte) {
	h := w.Header()
	h.Set("Content-Encoding", "gzip")
	h.Set("ETag", `"`+etag+`-gzip"`)
	http.ServeContent(w, r, "", mod, bytes.NewReader(b))
}
