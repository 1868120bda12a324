package cdn

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// gzipOrigin serves body at every path, gzip-encoded as coded(body) to
// requests that accept gzip. It counts requests, those that accepted gzip,
// and the body bytes it wrote.
type gzipOrigin struct {
	srv                       *httptest.Server
	requests, accepted, wrote atomic.Int64
}

func newGzipOrigin(t *testing.T, body []byte, coded func([]byte) []byte) *gzipOrigin {
	t.Helper()
	o := &gzipOrigin{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		b := body
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			o.accepted.Add(1)
			b = coded(body)
			w.Header().Set("Content-Encoding", "gzip")
		}
		n, _ := w.Write(b)
		o.wrote.Add(int64(n))
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func client(t *testing.T, url string) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: url, BaseBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// manifestLike is a manifest-shaped body: repetitive JSON around hex roots.
func manifestLike(files int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"files":[`)
	for i := range files {
		fmt.Fprintf(&b, `{"path":"r0/seg-%06d.ts","size":250000,"chunks":4,"type":"video/mp2t","root":"%s"},`, i, core.SumSHA256(fmt.Appendf(nil, "%d", i)))
	}
	b.WriteString(`{}]}`)
	return b.Bytes()
}

func TestManifestArrivesGzipEncoded(t *testing.T) {
	body := manifestLike(2700)
	o := newGzipOrigin(t, body, gzipped)
	got, err := client(t, o.srv.URL).Manifest(context.Background(), core.ContentID{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes that differ from the %d-byte manifest", len(got), len(body))
	}
	if o.accepted.Load() != 1 {
		t.Fatalf("the client asked without Accept-Encoding: gzip (%d of %d requests accepted it)", o.accepted.Load(), o.requests.Load())
	}
	if w := o.wrote.Load(); w > int64(len(body))/2 {
		t.Fatalf("%d bytes on the wire for a %d-byte manifest: not compressed", w, len(body))
	}
}

// TestCorruptGzipManifestRefused: a gzip-encoded body that does not decode
// is a bad response, said as such, and not asked for again.
func TestCorruptGzipManifestRefused(t *testing.T) {
	body := manifestLike(100)
	for name, coded := range map[string]func([]byte) []byte{
		"not gzip": func(b []byte) []byte { return b },
		"corrupt deflate data": func(b []byte) []byte {
			z := gzipped(b)
			for i := 20; i < len(z)-8; i += 7 {
				z[i] ^= 0x5a
			}
			return z
		},
		"bad checksum": func(b []byte) []byte {
			z := gzipped(b)
			z[len(z)-6] ^= 1
			return z
		},
	} {
		t.Run(name, func(t *testing.T) {
			o := newGzipOrigin(t, body, coded)
			_, err := client(t, o.srv.URL).Manifest(context.Background(), core.ContentID{})
			if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "gzip-encoded body does not decode") || !strings.Contains(err.Error(), "/manifests/") {
				t.Fatalf("err = %v, want a bad response naming the manifest's URL and the gzip encoding", err)
			}
			if n := o.requests.Load(); n != 1 {
				t.Fatalf("%d requests: a body that does not decode was asked for again", n)
			}
		})
	}
}

// TestGzipBombRefused: the size limit of a fetch (Manifest's, Get's)
// bounds the decoded bytes, so a small compressed body cannot make the
// client inflate past it.
func TestGzipBombRefused(t *testing.T) {
	const limit = 1 << 20
	bomb := gzipped(make([]byte, 4*limit))
	o := newGzipOrigin(t, nil, func([]byte) []byte { return bomb })
	c := client(t, o.srv.URL)
	_, err := c.Get(context.Background(), "manifests/bomb", limit)
	if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), fmt.Sprintf("longer than %d bytes once gzip-decoded", limit)) {
		t.Fatalf("err = %v, want a bad response saying the decoded body is over %d bytes", err, limit)
	}
	if got := c.BytesFetched(); got > limit+1 {
		t.Fatalf("the client decoded %d bytes, more than the limit", got)
	}
	if n := o.requests.Load(); n != 1 {
		t.Fatalf("%d requests: an oversized body was asked for again", n)
	}
}
