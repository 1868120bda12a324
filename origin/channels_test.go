package origin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
)

// writeUpdate writes a signed update number seq of channel "news" with
// target duration td as the channel's latest, and returns its layout path
// and bytes.
func writeUpdate(t *testing.T, dir string, seq uint64, td int64) (string, []byte) {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	u := &manifest.ChannelUpdate{
		Channel: "news", Seq: seq, TargetDuration: td, MediaSequence: seq,
		Segments: []manifest.ChannelSegment{{Seq: seq, Name: "s.ts", DurationMs: td * 1000, Size: 10, Content: core.ContentID(core.SumSHA256([]byte{byte(seq)}))}},
	}
	if err := u.Sign(key); err != nil {
		t.Fatal(err)
	}
	b, err := u.Encode()
	if err != nil {
		t.Fatal(err)
	}
	p := layout.ChannelDir + "/" + u.ID().String() + "/" + layout.ChannelLatest
	full := filepath.Join(dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// TestChannelUpdateIsCacheable: a channel's latest update is served
// cacheable for half its target duration with a strong ETag over its bytes,
// a conditional request for the same bytes is a 304 without a body (also
// through the fetchers' client), and a new update gets a new ETag. Each
// request is counted as a channel update.
func TestChannelUpdateIsCacheable(t *testing.T) {
	f := newFixture(t)
	s, ts := start(t, f, 0)
	p, b := writeUpdate(t, f.dir, 1, 6)

	resp, body := do(t, "GET", ts.URL+"/"+p, nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || !bytes.Equal(body, b) {
		t.Fatalf("latest: status %d, %d bytes, want 200 with the update", resp.StatusCode, len(body))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=3" {
		t.Fatalf("latest: Cache-Control %q, want public, max-age=3 (half the 6 s target duration)", cc)
	}
	if !strings.HasPrefix(etag, `"`) || len(etag) < 10 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("latest: ETag %q, Content-Type %q", etag, resp.Header.Get("Content-Type"))
	}
	before := s.BytesServed()
	resp, body = do(t, "GET", ts.URL+"/"+p, map[string]string{"If-None-Match": etag})
	if resp.StatusCode != 304 || len(body) != 0 || s.BytesServed() != before {
		t.Fatalf("If-None-Match %s: status %d, %d bytes; want 304 and no body", etag, resp.StatusCode, len(body))
	}

	c, err := cdn.New(cdn.Config{BaseURL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if got, tag, modified, err := c.GetIfNoneMatch(ctx, p, etag, manifest.MaxChannelUpdateSize); err != nil || modified || got != nil || tag != etag {
		t.Fatalf("client, unchanged: %d bytes, %q, modified %v, %v", len(got), tag, modified, err)
	}
	_, b2 := writeUpdate(t, f.dir, 2, 6)
	got, tag, modified, err := c.GetIfNoneMatch(ctx, p, etag, manifest.MaxChannelUpdateSize)
	if err != nil || !modified || !bytes.Equal(got, b2) || tag == etag || tag == "" {
		t.Fatalf("client, new update: %d bytes, ETag %q (was %q), modified %v, %v", len(got), tag, etag, modified, err)
	}
	if n := s.ChannelUpdateRequests(); n != 4 {
		t.Fatalf("ChannelUpdateRequests() = %d, want 4", n)
	}
	resp, body = do(t, "GET", ts.URL+"/metrics", nil)
	if !strings.Contains(string(body), `shoal_origin_requests_by_kind_total{kind="channel_update"} 4`) {
		t.Fatalf("metrics lack 4 channel update requests:\n%s", body)
	}
}

// TestChannelUpdateTargetDurationBounds: max-age is at least a second and at
// most maxUpdateMaxAge, and a latest file that is not an update is served
// as any changing file (no-cache).
func TestChannelUpdateTargetDurationBounds(t *testing.T) {
	f := newFixture(t)
	_, ts := start(t, f, 0)
	p, _ := writeUpdate(t, f.dir, 1, 1)
	if resp, _ := do(t, "GET", ts.URL+"/"+p, nil); resp.Header.Get("Cache-Control") != "public, max-age=1" {
		t.Fatalf("1 s target: Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	p, _ = writeUpdate(t, f.dir, 2, 3600)
	if resp, _ := do(t, "GET", ts.URL+"/"+p, nil); resp.Header.Get("Cache-Control") != "public, max-age=30" {
		t.Fatalf("1 h target: Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	if err := os.WriteFile(filepath.Join(f.dir, filepath.FromSlash(p)), []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, "GET", ts.URL+"/"+p, nil)
	if resp.StatusCode != 200 || string(body) != "not json" || resp.Header.Get("Cache-Control") != cacheMutable {
		t.Fatalf("garbage latest: status %d, body %q, Cache-Control %q", resp.StatusCode, body, resp.Header.Get("Cache-Control"))
	}
}

func TestPathKind(t *testing.T) {
	id := manifest.ChannelIDOf(manifest.PublicKey{}, "news").String()
	h := core.SumSHA256([]byte("x"))
	for _, tc := range []struct{ path, want string }{
		{"/" + layout.ManifestPath(core.ContentID(h)), kindManifest},
		{"/" + layout.HashLayerPath(h), kindHashLayer},
		{"/" + layout.ChunkPath(h), kindChunk},
		{"/channels/" + id + "/latest", kindChannelUpdate},
		{"/channels/" + id + "/17", kindChannelHistory},
		{"/channels/" + id + "/x/latest", kindOther},
		{"/channels/nope/latest", kindOther},
		{"/index.html", kindOther},
	} {
		if got := pathKind(tc.path); got != tc.want {
			t.Errorf("pathKind(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
