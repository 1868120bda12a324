package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media/mediatest"
	"github.com/shoal-cdn/shoal/netx"
)

// browserGateway is a lone peer (no tracker) on a published tree, with its
// gateway on loopback.
func browserGateway(t *testing.T, statusOrigins []string) (*fixture, *Peer, string) {
	t.Helper()
	fx := publishTree(t, "browser", 33, map[string]int{"a.bin": 3*testChunk + 7, "seg0.ts": 100, "notes.txt": 10})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := netx.NewMemNetwork().NewHost("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPeer(ctx, PeerConfig{CacheDir: t.TempDir(), Origin: fx.url, Trust: manifest.NewKeySet(manifest.PublicOf(fx.key)), Host: h, StatusOrigins: statusOrigins})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	gw := httptest.NewServer(p.Gateway())
	t.Cleanup(gw.Close)
	return fx, p, gw.URL
}

// do sends one request with the given headers (name, value, …) and returns
// the response with its body read.
func do(t *testing.T, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// wantList fails unless the comma-separated header value lists every item.
func wantList(t *testing.T, what, got string, items ...string) {
	t.Helper()
	have := map[string]bool{}
	for v := range strings.SplitSeq(got, ",") {
		have[strings.ToLower(strings.TrimSpace(v))] = true
	}
	for _, it := range items {
		if !have[strings.ToLower(it)] {
			t.Errorf("%s = %q, lacks %s", what, got, it)
		}
	}
}

// TestGatewayPreflight: a CORS preflight on content and live routes is a
// 204 that allows GET/HEAD with range and prefetch headers from any origin,
// and allows a private-network request when asked; it joins nothing. A
// path that is no route stays a 404.
func TestGatewayPreflight(t *testing.T) {
	fx, p, gw := browserGateway(t, nil)
	for _, path := range []string{
		"/c/" + fx.id.String() + "/a.bin",
		"/live/" + strings.Repeat("A", 43) + "/index.m3u8",
		"/live/" + strings.Repeat("A", 43) + "/seg7.ts",
	} {
		resp, _ := do(t, "OPTIONS", gw+path, "Origin", "https://player.example",
			"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "range,if-range",
			"Access-Control-Request-Private-Network", "true")
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("preflight %s: %s, want 204", path, resp.Status)
		}
		if got := h.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("preflight %s: Allow-Origin %q, want *", path, got)
		}
		wantList(t, "Access-Control-Allow-Methods", h.Get("Access-Control-Allow-Methods"), "GET", "HEAD", "OPTIONS")
		wantList(t, "Access-Control-Allow-Headers", h.Get("Access-Control-Allow-Headers"), "Range", "If-Range", "If-None-Match", PrefetchHeader)
		if h.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight %s: no Access-Control-Max-Age", path)
		}
		if got := h.Get("Access-Control-Allow-Private-Network"); got != "true" {
			t.Errorf("preflight %s asking for the private network: Allow-Private-Network %q, want true", path, got)
		}
	}
	// Without the private-network request, no private-network grant.
	resp, _ := do(t, "OPTIONS", gw+"/c/"+fx.id.String()+"/a.bin", "Origin", "https://player.example", "Access-Control-Request-Method", "GET")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Private-Network") != "" {
		t.Errorf("plain preflight: %s, Allow-Private-Network %q", resp.Status, resp.Header.Get("Access-Control-Allow-Private-Network"))
	}
	// A plain OPTIONS (no preflight) says what the route allows.
	resp, _ = do(t, "OPTIONS", gw+"/c/"+fx.id.String()+"/a.bin")
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("OPTIONS: %s, want 204", resp.Status)
	}
	wantList(t, "Allow", resp.Header.Get("Allow"), "GET", "HEAD", "OPTIONS")
	if resp, _ := do(t, "OPTIONS", gw+"/nowhere", "Origin", "https://player.example", "Access-Control-Request-Method", "GET"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("preflight of no route: %s, want 404", resp.Status)
	}
	if n := len(p.Sessions()); n != 0 {
		t.Errorf("preflights joined %d swarms; they must cost nothing", n)
	}
}

// TestGatewayCORSHeaders: every content response, errors included, is
// readable by any origin and exposes the headers players read; status and
// metrics are not readable cross-origin unless their origin is listed.
func TestGatewayCORSHeaders(t *testing.T) {
	fx, _, gw := browserGateway(t, nil)
	base := gw + "/c/" + fx.id.String() + "/"
	for _, tc := range []struct {
		path, rng string
		status    int
	}{
		{"a.bin", "", 200},
		{"a.bin", "bytes=10-19", 206},
		{"missing.bin", "", 404},
	} {
		resp, _ := do(t, "GET", base+tc.path, "Origin", "https://player.example", "Range", tc.rng)
		if resp.StatusCode != tc.status {
			t.Fatalf("GET %s %s: %s, want %d", tc.path, tc.rng, resp.Status, tc.status)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("GET %s %s: Allow-Origin %q, want *", tc.path, tc.rng, got)
		}
		wantList(t, "Access-Control-Expose-Headers", resp.Header.Get("Access-Control-Expose-Headers"), "Content-Range", "Content-Length", "ETag", "Accept-Ranges")
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", tc.path)
		}
	}
	for _, path := range []string{"/api/status", "/metrics"} {
		resp, _ := do(t, "GET", gw+path, "Origin", "https://tracker.example")
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("GET %s from an unlisted origin: Allow-Origin %q; it must not be readable cross-origin", path, got)
		}
		resp, _ = do(t, "OPTIONS", gw+path, "Origin", "https://tracker.example", "Access-Control-Request-Method", "GET")
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight %s from an unlisted origin: %s, Allow-Origin %q; want 204 without it", path, resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}

// TestGatewayStatusOrigins: the origins of PeerConfig.StatusOrigins (and
// only they) may read /api/status and /metrics; "*" opens them to all.
func TestGatewayStatusOrigins(t *testing.T) {
	_, _, gw := browserGateway(t, []string{"https://ops.example", "http://127.0.0.1:9000"})
	for _, tc := range []struct{ origin, want string }{
		{"https://ops.example", "https://ops.example"},
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"https://evil.example", ""},
		{"", ""},
	} {
		for _, path := range []string{"/api/status", "/metrics"} {
			resp, _ := do(t, "GET", gw+path, "Origin", tc.origin)
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.want {
				t.Errorf("GET %s from %q: Allow-Origin %q, want %q", path, tc.origin, got, tc.want)
			}
			wantList(t, "Vary", resp.Header.Get("Vary"), "Origin")
		}
	}
	_, _, gw = browserGateway(t, []string{"*"})
	resp, _ := do(t, "GET", gw+"/api/status", "Origin", "https://any.example")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("status with --status-origins '*': Allow-Origin %q, want *", got)
	}
}

func TestParseOrigins(t *testing.T) {
	got, err := ParseOrigins(" https://ops.example , http://127.0.0.1:9000,*,")
	if err != nil || strings.Join(got, " ") != "https://ops.example http://127.0.0.1:9000 *" {
		t.Fatalf("ParseOrigins: %q, %v", got, err)
	}
	for _, bad := range []string{"ops.example", "https://ops.example/", "ftp://x", "https://", "https://a.example/path"} {
		if _, err := ParseOrigins(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseOrigins(%q): %v, want an error naming it", bad, err)
		}
	}
}

// TestGatewayIfRange: a Range with an If-Range naming the file's ETag is a
// 206 of that range; with another tag, a weak tag or a date, the whole file
// (RFC 9110 §13.1.5: the client's copy changed, so a part would corrupt it).
func TestGatewayIfRange(t *testing.T) {
	fx, _, gw := browserGateway(t, nil)
	url := gw + "/c/" + fx.id.String() + "/a.bin"
	want, err := os.ReadFile(filepath.Join(fx.src, "a.bin"))
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := do(t, "HEAD", url)
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Fatalf("HEAD: ETag %q, want a strong tag", etag)
	}
	lo, hi := testChunk-5, testChunk+5 // across a chunk boundary
	rng := fmt.Sprintf("bytes=%d-%d", lo, hi-1)
	for _, tc := range []struct {
		ifRange string
		status  int
		body    []byte
	}{
		{"", 206, want[lo:hi]},
		{etag, 206, want[lo:hi]},
		{`"` + strings.Repeat("A", 43) + `"`, 200, want},
		{"W/" + etag, 200, want},
		{"Mon, 30 Nov 2026 07:00:00 GMT", 200, want},
	} {
		resp, body := do(t, "GET", url, "Range", rng, "If-Range", tc.ifRange)
		if resp.StatusCode != tc.status || string(body) != string(tc.body) {
			t.Errorf("Range %s, If-Range %q: %s with %d bytes, want %d with %d", rng, tc.ifRange, resp.Status, len(body), tc.status, len(tc.body))
		}
		if tc.status == 200 && resp.Header.Get("Content-Range") != "" {
			t.Errorf("If-Range %q: whole file with Content-Range %q", tc.ifRange, resp.Header.Get("Content-Range"))
		}
	}
}

// TestGatewayMediaTypesFromTable: files are served with the table's types,
// whatever a manifest signed outside it.
func TestGatewayMediaTypesFromTable(t *testing.T) {
	fx, _, gw := browserGateway(t, nil)
	for path, want := range map[string]string{
		"seg0.ts":   "video/mp2t",
		"notes.txt": "text/plain; charset=utf-8",
		"a.bin":     "application/octet-stream",
	} {
		resp, _ := do(t, "HEAD", gw+"/c/"+fx.id.String()+"/"+path)
		if got := resp.Header.Get("Content-Type"); got != want {
			t.Errorf("%s: Content-Type %q, want %q", path, got, want)
		}
	}
	for _, tc := range []struct{ path, signed, want string }{
		{"v/seg1.ts", "text/vnd.trolltech.linguist", "video/mp2t"}, // an older publisher's host MIME database
		{"a/seg1.m4s", "audio/mp4", "audio/mp4"},                   // the publisher knows it is audio
		{"x.html", "text/html", "application/octet-stream"},        // never a page on the gateway's origin
		{"index.m3u8", "", "application/vnd.apple.mpegurl"},
	} {
		if got := fileType(manifest.File{Path: tc.path, MediaType: tc.signed}); got != tc.want {
			t.Errorf("fileType(%s signed %q) = %q, want %q", tc.path, tc.signed, got, tc.want)
		}
	}
}

// TestGatewayMediaSegmentIfRangeAndTypes: a media content's segments (the
// playback path) honour If-Range like any file, and are served with the
// types the publisher signed from the table (audio/mp4 for the audio
// representation's segments), the MPD as application/dash+xml.
func TestGatewayMediaSegmentIfRangeAndTypes(t *testing.T) {
	sf, entry := newMediaFixture(t, func(dir string) string { return mediatest.DASH(t, dir) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := sf.peer(t, ctx)
	gw := httptest.NewServer(p.Gateway())
	defer gw.Close()
	base := gw.URL + "/c/" + sf.id.String() + "/"
	for path, want := range map[string]string{
		entry:                     "application/dash+xml",
		"init-stream0.m4s":        "video/mp4",
		"init-stream1.m4s":        "audio/mp4",
		"chunk-stream1-00001.m4s": "audio/mp4",
		"chunk-stream0-00001.m4s": "video/mp4",
	} {
		resp, _ := do(t, "HEAD", base+path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != want {
			t.Errorf("HEAD %s: %s, Content-Type %q, want 200 %q", path, resp.Status, resp.Header.Get("Content-Type"), want)
		}
	}
	seg := "chunk-stream0-00002.m4s"
	want, err := os.ReadFile(filepath.Join(sf.src, seg))
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := do(t, "HEAD", base+seg)
	etag := resp.Header.Get("ETag")
	for _, tc := range []struct {
		ifRange string
		status  int
		body    []byte
	}{
		{etag, 206, want[:100]},
		{`"` + strings.Repeat("B", 43) + `"`, 200, want},
	} {
		resp, body := do(t, "GET", base+seg, "Range", "bytes=0-99", "If-Range", tc.ifRange)
		if resp.StatusCode != tc.status || string(body) != string(tc.body) {
			t.Errorf("segment, If-Range %q: %s with %d bytes, want %d with %d", tc.ifRange, resp.Status, len(body), tc.status, len(tc.body))
		}
	}
}
