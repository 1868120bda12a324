//go:build e2e

package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/internal/nginxtest"
)

// ngxCost sums what nginx served since the last call, by kind of path.
type ngxCost struct {
	requests                      int
	bytes                         int64
	manifests, layers, chunks     int
	chunkBytes, otherBytes        int64
	gzipManifests, rangedRequests int
}

func (c ngxCost) String() string {
	return fmt.Sprintf("%d requests, %d bytes (manifests %d, %d gzip; hash layers %d; chunks %d = %d bytes; other %d bytes; ranged %d)",
		c.requests, c.bytes, c.manifests, c.gzipManifests, c.layers, c.chunks, c.chunkBytes, c.otherBytes, c.rangedRequests)
}

// ngxSince settles nginx's access log and sums the requests after the first
// seen of them.
func ngxSince(t *testing.T, s *nginxtest.Server, seen *int) ngxCost {
	t.Helper()
	rs, err := s.Settle(time.Second, fxDeadline)
	if err != nil {
		t.Fatal(err)
	}
	var c ngxCost
	for _, r := range rs[*seen:] {
		c.requests++
		c.bytes += r.Body
		if r.Range != "" {
			c.rangedRequests++
		}
		switch {
		case strings.HasPrefix(r.Path, "/manifests/"):
			c.manifests++
			if r.Encoding == "gzip" {
				c.gzipManifests++
			}
			c.otherBytes += r.Body
		case strings.HasPrefix(r.Path, "/hashes/"):
			c.layers++
			c.otherBytes += r.Body
		case strings.HasPrefix(r.Path, "/chunks/"):
			c.chunks++
			c.chunkBytes += r.Body
		default:
			c.otherBytes += r.Body
		}
	}
	*seen = len(rs)
	return c
}

// TestNginxOrigin: a stock nginx with the documented server block
// (deploy/nginx/shoal-origin.conf) is the origin, and nothing of Shoal
// runs on its side. What a user does with it works, and costs the origin
// what it should, counted from nginx's own access log: a one-file get of
// a two-file content, a HEAD and a 100-byte range through a peer's
// gateway, a whole file, and a second peer that takes it from the first.
func TestNginxOrigin(t *testing.T) {
	const big = 24 << 20
	r := newFxRig(t)
	// 200 small files make the manifest large enough (≈ 40 KB) for nginx
	// to gzip it, as it does a real packaged stream's.
	files := []fxFile{{"big.bin", big, 9101}, {"notes/readme.txt", 3000, 9102}}
	for i := range 200 {
		files = append(files, fxFile{fmt.Sprintf("seg/%03d.ts", i), 100, 9200 + uint64(i)})
	}
	c := r.publish("ngx", files...)
	ngx := nginxtest.Start(t, r.layout)
	r.originURL = ngx.URL
	r.startTracker()
	seen := 0
	_ = ngxSince(t, ngx, &seen)

	// shoal get of the small file: the manifest (gzip) and that file's one
	// chunk (a single-chunk file needs no hash layer), nothing else.
	out := filepath.Join(r.dir, "readme.txt")
	if o, e, code := runBin(t, r.bin, "get", "--quiet", "--cache", filepath.Join(r.dir, "getcache"),
		"--origin", ngx.URL, "--trust", r.pub, "-o", out, c.id+"/notes/readme.txt"); code != 0 {
		t.Fatalf("get exit %d:\n%s%s", code, o, e)
	}
	if sum, n := fileSum(t, out); n != 3000 || sum != c.files["notes/readme.txt"].sum {
		t.Fatalf("get through nginx: %d bytes, not the source", n)
	}
	d := ngxSince(t, ngx, &seen)
	t.Logf("get of one 3,000-byte file: %v", d)
	if d.manifests != 1 || d.gzipManifests != 1 || d.layers != 0 || d.chunks != 1 || d.chunkBytes != 3000 {
		for _, rq := range mustRequests(t, ngx) {
			t.Logf("  %+v", rq)
		}
		t.Errorf("get of one small file cost nginx %v; want the manifest (gzip) and one 3,000-byte chunk", d)
	}

	a := r.startPeer("a")
	gwURL := a.gw + "/c/" + c.id + "/big.bin"

	// HEAD: the manifest, no chunk, no hash layer.
	if resp := fxDo(t, http.MethodHead, gwURL); resp.err != nil || resp.status != 200 || resp.n != 0 {
		t.Fatalf("HEAD: %+v", resp)
	}
	d = ngxSince(t, ngx, &seen)
	t.Logf("HEAD through a peer: %v", d)
	if d.chunks != 0 || d.layers != 0 || d.manifests > 1 {
		t.Errorf("HEAD cost nginx %v; want at most the manifest", d)
	}

	// A 100-byte range: that chunk and at most the read-ahead window.
	resp := fxDo(t, http.MethodGet, gwURL, "Range", "bytes=1000-1099")
	if resp.err != nil || resp.status != http.StatusPartialContent || string(resp.body) != string(c.sourceRange(t, "big.bin", 1000, 100)) {
		t.Fatalf("range: status %d, %d bytes, err %v", resp.status, resp.n, resp.err)
	}
	d = ngxSince(t, ngx, &seen)
	t.Logf("100-byte range through a peer: %v", d)
	if d.chunkBytes > fxChunk+fxReadAhead || d.layers != 1 {
		t.Errorf("a 100-byte range cost nginx %v; want one hash layer and at most %d chunk bytes (a chunk and the read-ahead window)", d, fxChunk+fxReadAhead)
	}

	// The whole file: byte-identical, about one copy from nginx.
	wantWhole(t, "GET big.bin through a", fxDo(t, http.MethodGet, gwURL), c.files["big.bin"])
	d = ngxSince(t, ngx, &seen)
	t.Logf("whole 24 MiB file through a peer: %v", d)
	if d.chunkBytes > big {
		t.Errorf("the whole file cost nginx %d chunk bytes, more than the file (%d)", d.chunkBytes, big)
	}

	// A second peer takes it from the first: it joins through the same
	// tracker, and nginx sends it the manifest, the hash layer and the few
	// chunks its stream needed before it had connected to the first peer
	// (each is due a second after it is asked for: 0–13 chunks in runs on
	// a loaded machine).
	b := r.startPeer("b")
	wantWhole(t, "GET big.bin through b", fxDo(t, http.MethodGet, b.gw+"/c/"+c.id+"/big.bin"), c.files["big.bin"])
	d = ngxSince(t, ngx, &seen)
	bs, _ := b.swarm(t, c.id)
	t.Logf("the same file through a second peer: %v; b took %d bytes from peers, %d from the origin", d, bs.BytesFromPeers, bs.BytesFromOrigin)
	if d.chunkBytes > big/2 || bs.BytesFromPeers < big/2 {
		t.Errorf("the second peer cost nginx %v and took %d bytes from peers; want most of the %d bytes from the first peer", d, bs.BytesFromPeers, big)
	}
	for _, rq := range mustRequests(t, ngx) {
		if rq.Status >= 500 {
			t.Errorf("nginx answered %+v", rq)
		}
	}
}

func mustRequests(t *testing.T, s *nginxtest.Server) []nginxtest.Request {
	t.Helper()
	rs, err := s.Requests()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}
