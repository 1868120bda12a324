package nginxtest

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServerBlockServesTheLayout: the documented server block serves the
// layout's directories with the right caching, gzips manifests, and
// nothing outside the layout's directories.
func TestServerBlockServesTheLayout(t *testing.T) {
	root := t.TempDir()
	manifest := `{"files":[` + strings.Repeat(`{"path":"v1/seg_00001.ts","size":1000000,"root":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"},`, 200) + `{}]}`
	for name, body := range map[string]string{
		"manifests/abc":      manifest,
		"chunks/ab/abcdef":   "chunk bytes",
		"channels/ch/latest": `{"seq":1}`,
		"secret.txt":         "not part of the layout",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := Start(t, root)
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	get := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	resp, body := get("/manifests/abc", "Accept-Encoding", "gzip")
	gz := int64(len(body))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || len(body) >= len(manifest)/2 {
		t.Errorf("manifest: %s, Content-Encoding %q, %d bytes of %d", resp.Status, resp.Header.Get("Content-Encoding"), len(body), len(manifest))
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("manifest Cache-Control %q, want immutable", cc)
	}
	resp, body = get("/chunks/ab/abcdef", "Range", "bytes=2-6")
	if resp.StatusCode != 206 || string(body) != "unk b" {
		t.Errorf("chunk range: %s %q", resp.Status, body)
	}
	resp, _ = get("/channels/ch/latest")
	if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != 200 || cc != "no-cache" {
		t.Errorf("channel update: %s, Cache-Control %q, want no-cache", resp.Status, cc)
	}
	if resp, _ = get("/secret.txt"); resp.StatusCode != 404 {
		t.Errorf("a file outside the layout's directories: %s, want 404", resp.Status)
	}

	// nginx logs a request just after answering it.
	var rs []Request
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if rs, err = s.Requests(); err != nil {
			t.Fatal(err)
		}
		if len(rs) >= 4 || time.Now().After(end) {
			break
		}
	}
	if len(rs) != 4 {
		t.Fatalf("access log: %d requests, want 4: %+v", len(rs), rs)
	}
	if r := rs[0]; r.Method != "GET" || r.Path != "/manifests/abc" || r.Status != 200 || r.Encoding != "gzip" || r.Body < gz || r.Body > gz+64 {
		t.Errorf("manifest logged as %+v, want a 200 GET, gzip, %d bytes (and chunked framing)", r, gz)
	}
	if r := rs[1]; r.Status != 206 || r.Range != "bytes=2-6" || r.Body != 5 {
		t.Errorf("range request logged as %+v", r)
	}
	if r := rs[3]; r.Status != 404 || r.Encoding != "" {
		t.Errorf("404 logged as %+v", r)
	}
}
