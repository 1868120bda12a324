package origin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
)

// content returns n pseudo-random bytes derived from name, so a failure
// reproduces.
func content(name string, n int) []byte {
	var seed uint64
	for _, c := range name {
		seed = seed*131 + uint64(c)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// fixture is a layout on disk with one file of each kind.
type fixture struct {
	dir                           string
	chunk, hashes, manifest, feed string // slash paths, no leading slash
	files                         map[string][]byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	chunk := content("chunk", 100_000)
	hl := content("hash layer", 3*core.HashSize)
	man := []byte(`{"version":1,"name":"test"}`)
	f := &fixture{
		dir:      dir,
		chunk:    layout.ChunkPath(core.SumSHA256(chunk)),
		hashes:   layout.HashLayerPath(core.SumSHA256(hl)),
		manifest: layout.ManifestPath(core.ContentID(core.SumSHA256(man))),
		feed:     "channels/live.json",
	}
	f.files = map[string][]byte{
		f.chunk:    chunk,
		f.hashes:   hl,
		f.manifest: man,
		f.feed:     []byte(`{"seq":1}`),
	}
	for p, b := range f.files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// start serves f over a loopback httptest server.
func start(t testing.TB, f *fixture, limit float64) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(Config{Dir: f.dir, UploadLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func do(t testing.TB, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestGetServesEachKindWithItsHeaders(t *testing.T) {
	f := newFixture(t)
	_, ts := start(t, f, 0)
	tests := []struct {
		name, path, ctype, cache string
		immutable                bool
	}{
		{"chunk", f.chunk, "application/octet-stream", cacheImmutable, true},
		{"hash layer", f.hashes, "application/octet-stream", cacheImmutable, true},
		{"manifest", f.manifest, "application/json", cacheImmutable, true},
		{"other file", f.feed, "application/json", cacheMutable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "GET", ts.URL+"/"+tt.path, nil)
			want := f.files[tt.path]
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Fatalf("status %d, %d bytes; want 200, %d bytes", resp.StatusCode, len(body), len(want))
			}
			h := resp.Header
			if got := h.Get("Content-Length"); got != strconv.Itoa(len(want)) {
				t.Errorf("Content-Length %q, want %d", got, len(want))
			}
			if got := h.Get("Content-Type"); !strings.HasPrefix(got, tt.ctype) {
				t.Errorf("Content-Type %q, want %q", got, tt.ctype)
			}
			if got := h.Get("Cache-Control"); got != tt.cache {
				t.Errorf("Cache-Control %q, want %q", got, tt.cache)
			}
			if got := h.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q, want *", got)
			}
			etag := h.Get("ETag")
			base := tt.path[strings.LastIndex(tt.path, "/")+1:]
			if tt.immutable && etag != `"`+base+`"` {
				t.Errorf("ETag %q, want the hash name %q", etag, base)
			}
			if !tt.immutable && (etag == "" || strings.HasPrefix(etag, "W/") || strings.Contains(etag, base)) {
				t.Errorf("ETag %q, want a size+mtime tag", etag)
			}
		})
	}
}

func TestMutableETagChangesWithFile(t *testing.T) {
	f := newFixture(t)
	_, ts := start(t, f, 0)
	r1, _ := do(t, "GET", ts.URL+"/"+f.feed, nil)
	if err := os.WriteFile(filepath.Join(f.dir, f.feed), []byte(`{"seq":22}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r2, body := do(t, "GET", ts.URL+"/"+f.feed, map[string]string{"If-None-Match": r1.Header.Get("ETag")})
	if r2.StatusCode != 200 || string(body) != `{"seq":22}` {
		t.Fatalf("after rewrite: status %d body %q; want 200 and the new body", r2.StatusCode, body)
	}
	if r1.Header.Get("ETag") == r2.Header.Get("ETag") {
		t.Fatalf("ETag %q did not change with size", r1.Header.Get("ETag"))
	}
}

func TestHeadHasLengthAndNoBody(t *testing.T) {
	f := newFixture(t)
	s, ts := start(t, f, 0)
	resp, body := do(t, "HEAD", ts.URL+"/"+f.chunk, nil)
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("status %d, %d body bytes; want 200 and none", resp.StatusCode, len(body))
	}
	if resp.ContentLength != int64(len(f.files[f.chunk])) {
		t.Fatalf("Content-Length %d, want %d", resp.ContentLength, len(f.files[f.chunk]))
	}
	if s.BytesServed() != 0 {
		t.Fatalf("BytesServed %d after HEAD, want 0", s.BytesServed())
	}
}

func TestRanges(t *testing.T) {
	f := newFixture(t)
	_, ts := start(t, f, 0)
	data := f.files[f.chunk]
	n := len(data)
	tests := []struct {
		name, rng string
		status    int
		want      []byte // nil: not checked (multipart)
		crange    string
	}{
		{"first bytes", "bytes=0-99", 206, data[:100], fmt.Sprintf("bytes 0-99/%d", n)},
		{"middle", "bytes=1000-1999", 206, data[1000:2000], fmt.Sprintf("bytes 1000-1999/%d", n)},
		{"suffix", "bytes=-100", 206, data[n-100:], fmt.Sprintf("bytes %d-%d/%d", n-100, n-1, n)},
		{"open end", fmt.Sprintf("bytes=%d-", n-10), 206, data[n-10:], fmt.Sprintf("bytes %d-%d/%d", n-10, n-1, n)},
		{"out of range", fmt.Sprintf("bytes=%d-", n), 416, nil, fmt.Sprintf("bytes */%d", n)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "GET", ts.URL+"/"+f.chunk, map[string]string{"Range": tt.rng})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Range"); got != tt.crange {
				t.Errorf("Content-Range %q, want %q", got, tt.crange)
			}
			if tt.want != nil && !bytes.Equal(body, tt.want) {
				t.Errorf("body %d bytes, want %d bytes of the range", len(body), len(tt.want))
			}
		})
	}
	t.Run("multi", func(t *testing.T) {
		resp, body := do(t, "GET", ts.URL+"/"+f.chunk, map[string]string{"Range": "bytes=0-9,500-509"})
		if resp.StatusCode != 206 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") {
			t.Fatalf("status %d type %q, want 206 multipart/byteranges", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !bytes.Contains(body, data[:10]) || !bytes.Contains(body, data[500:510]) {
			t.Fatal("multipart body lacks a requested range")
		}
	})
}

func TestConditionalRequests(t *testing.T) {
	f := newFixture(t)
	s, ts := start(t, f, 0)
	etag := `"` + f.chunk[strings.LastIndex(f.chunk, "/")+1:] + `"`
	data := f.files[f.chunk]

	resp, body := do(t, "GET", ts.URL+"/"+f.chunk, map[string]string{"If-None-Match": etag})
	if resp.StatusCode != 304 || len(body) != 0 || s.BytesServed() != 0 {
		t.Fatalf("If-None-Match match: status %d, %d bytes, served %d; want 304, nothing", resp.StatusCode, len(body), s.BytesServed())
	}
	resp, _ = do(t, "GET", ts.URL+"/"+f.chunk, map[string]string{"If-None-Match": `"other"`})
	if resp.StatusCode != 200 {
		t.Fatalf("If-None-Match mismatch: status %d, want 200", resp.StatusCode)
	}
	resp, body = do(t, "GET", ts.URL+"/"+f.chunk, map[string]string{"Range": "bytes=0-9", "If-Range": etag})
	if resp.StatusCode != 206 || !bytes.Equal(body, data[:10]) {
		t.Fatalf("If-Range match: status %d, want 206 with the range", resp.StatusCode)
	}
	resp, body = do(t, "GET", ts.URL+"/"+f.chunk, map[string]string{"Range": "bytes=0-9", "If-Range": `"stale"`})
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("If-Range mismatch: status %d, want 200 with the whole file", resp.StatusCode)
	}
}

func TestNotFound(t *testing.T) {
	f := newFixture(t)
	_, ts := start(t, f, 0)
	for _, p := range []string{
		"/chunks/00/" + strings.Repeat("0", 64), // missing
		"/nope",
		"/",                  // root directory
		"/chunks",            // directory
		"/chunks/",           // directory, trailing slash
		"/" + f.chunk + "/x", // file used as a directory
		"/" + f.chunk + "/",
	} {
		resp, body := do(t, "GET", ts.URL+p, nil)
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
		}
		if bytes.Contains(body, []byte("href")) || bytes.Contains(body, []byte(f.chunk[len("chunks/00/"):])) {
			t.Errorf("GET %s: body %q looks like a listing", p, body)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	_, ts := start(t, f, 0)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		resp, body := do(t, m, ts.URL+"/"+f.chunk, nil)
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d Allow %q, want 405 and GET, HEAD", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
		if bytes.Equal(body, f.files[f.chunk]) {
			t.Errorf("%s: served the file", m)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"empty dir", Config{}},
		{"missing dir", Config{Dir: filepath.Join(dir, "missing")}},
		{"file not dir", Config{Dir: file}},
		{"negative limit", Config{Dir: dir, UploadLimit: -1}},
	} {
		if _, err := New(tt.cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: err %v, want ErrBadConfig", tt.name, err)
		}
	}
	if _, err := New(Config{Dir: dir}); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func TestServeReturnsNilAfterCancel(t *testing.T) {
	f := newFixture(t)
	s, err := New(Config{Dir: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, body := do(t, "GET", "http://"+ln.Addr().String()+"/"+f.feed, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, f.files[f.feed]) {
		t.Fatalf("status %d before shutdown, want 200", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v, want nil", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("listener still accepting after Serve returned")
	}
}

func TestRunLogsAddressAndServes(t *testing.T) {
	f := newFixture(t)
	addrs := make(chan string, 1)
	logger := newAddrLogger(addrs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Dir: f.dir, Listen: "127.0.0.1:0", Logger: logger}) }()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	}
	resp, _ := do(t, "HEAD", "http://"+addr+"/"+f.manifest, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("HEAD via Run: status %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

// rawGet sends path verbatim on the wire, bypassing any client-side
// cleaning, and returns the status and body.
func rawGet(t *testing.T, addr, path string) (int, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}
