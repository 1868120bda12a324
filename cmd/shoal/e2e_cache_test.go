//go:build e2e

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestGetBesideRunningPeerSharesItsCache: with `shoal peer` running on a
// cache, `shoal get` on the same cache goes through the peer (no "store
// directory in use"), its output is byte-identical, and a second get of the
// same file costs the origin nothing: the bytes are in the one cache.
func TestGetBesideRunningPeerSharesItsCache(t *testing.T) {
	const size = 6 << 20
	r := newFxRig(t)
	c := r.publish("shared", fxFile{"a.bin", size, 9100}, fxFile{"d/b.bin", 300 << 10, 9101})
	r.startOrigin()
	r.startTracker()
	p := r.startPeer("daemon")
	for i, target := range []string{c.id + "/a.bin", c.id + "/a.bin", c.id} {
		out := filepath.Join(r.dir, fmt.Sprintf("out-%d", i))
		before := r.settle()
		o, e, code := runBin(t, r.bin, "get", "--quiet", "--cache", p.cache, "--origin", r.originURL, "--trust", r.pub, "-o", out, target)
		if code != 0 {
			t.Fatalf("get %s beside a running peer: exit %d:\n%s%s", target, code, o, e)
		}
		if !strings.Contains(o, "through the peer daemon at "+p.gw) {
			t.Errorf("get %s did not say it went through the peer at %s: %q", target, p.gw, o)
		}
		d := r.settle().sub(before)
		what := strings.TrimPrefix(target, c.id)
		if what == "" {
			what = "(the whole content)"
		}
		t.Logf("FIGURE get %s beside a peer: origin_requests=%d origin_bytes=%d", what, d.requests, d.bytes)
		if i == 1 && d.bytes != 0 {
			t.Errorf("second get of a.bin cost the origin %d bytes (%d requests); the peer's cache holds it", d.bytes, d.requests)
		}
		check := map[string]string{"a.bin": out}
		if target == c.id {
			check = map[string]string{"a.bin": filepath.Join(out, "a.bin"), "d/b.bin": filepath.Join(out, "d", "b.bin")}
		}
		for src, got := range check {
			sum, n := fileSum(t, got)
			if want := c.files[src]; n != want.size || sum != want.sum {
				t.Errorf("%s of get %s: %d bytes, sha256 %x; want %d bytes, %x", src, target, n, sum[:8], want.size, want.sum[:8])
			}
		}
	}
}
