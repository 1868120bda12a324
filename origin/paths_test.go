package origin

import (
	"bytes"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "TOP-SECRET-OUTSIDE-THE-LAYOUT"

// secretFixture is a layout inside a parent directory that also holds a
// secret file, with symlinks leading in and out of the layout.
func secretFixture(t *testing.T) (*fixture, string) {
	t.Helper()
	f := newFixture(t)
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	// A secret next to the layout, reachable by .. from inside it.
	if err := os.WriteFile(filepath.Join(filepath.Dir(f.dir), "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"escape-abs":      outside,
		"escape-rel":      "../secret.txt",
		"channels/escdir": filepath.Dir(outside),
		"inside":          filepath.FromSlash(f.feed), // relative: os.Root refuses absolute links
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(f.dir, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(f.dir, ".hidden"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	return f, outside
}

func TestTraversalDoesNotLeak(t *testing.T) {
	f, _ := secretFixture(t)
	s, ts := start(t, f, 0)
	addr := strings.TrimPrefix(ts.URL, "http://")
	paths := []string{
		"/../secret.txt",
		"/channels/../../secret.txt",
		"/%2e%2e/secret.txt",
		"/%2E%2E/secret.txt",
		"/..%2fsecret.txt",
		"/channels/%2e%2e/%2e%2e/secret.txt",
		"/./channels/live.json",
		"//secret.txt",
		"/..\\secret.txt",
		"/escape-abs",
		"/escape-rel",
		"/channels/escdir/secret.txt",
		"/.hidden",
		"/channels/%00",
	}
	for _, p := range paths {
		// Over the wire, exactly as sent.
		status, body := rawGet(t, addr, p)
		if status < 400 || bytes.Contains(body, []byte(secret)) {
			t.Errorf("raw GET %s: status %d body %q; want a 4xx without the secret", p, status, body)
		}
		// And straight into the handler, in case a client or server
		// layer would have cleaned the path first.
		if strings.Contains(p, "%00") {
			continue // not a valid request target for NewRequest
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != 404 || bytes.Contains(rec.Body.Bytes(), []byte(secret)) {
			t.Errorf("handler GET %s: status %d; want 404 without the secret", p, rec.Code)
		}
	}
}

func TestSymlinkInsideLayoutIsServed(t *testing.T) {
	f, _ := secretFixture(t)
	_, ts := start(t, f, 0)
	resp, body := do(t, "GET", ts.URL+"/inside", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, f.files[f.feed]) {
		t.Fatalf("symlink within layout: status %d body %q, want 200 and its target", resp.StatusCode, body)
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/chunks/ab/abcd", "chunks/ab/abcd", true},
		{"/media/seg-1.ts", "media/seg-1.ts", true},
		{"/a", "a", true},
		{"", "", false},
		{"/", "", false},
		{"a", "", false},
		{"/a/", "", false},
		{"//a", "", false},
		{"/a//b", "", false},
		{"/..", "", false},
		{"/a/../b", "", false},
		{"/./a", "", false},
		{"/a/.", "", false},
		{"/.git/config", "", false},
		{"/a/.tmp-123", "", false},
		{"/a\\..\\b", "", false},
		{"/a\x00b", "", false},
	}
	for _, tt := range tests {
		got, ok := cleanName(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("cleanName(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzCleanName checks that no accepted name can climb out of the root or
// name a hidden file, whatever the request path.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"/a/b", "/../x", "/a/./b", "//", "/.x", "/a\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		name, ok := cleanName(p)
		if !ok {
			return
		}
		if !fs.ValidPath(name) || filepath.IsAbs(name) || name != filepath.ToSlash(filepath.Clean(name)) {
			t.Fatalf("cleanName(%q) accepted unclean %q", p, name)
		}
		for _, seg := range strings.Split(name, "/") {
			if seg == "" || seg[0] == '.' {
				t.Fatalf("cleanName(%q) accepted segment %q", p, seg)
			}
		}
		if "/"+name != p {
			t.Fatalf("cleanName(%q) = %q: rewrote the path", p, name)
		}
	})
}
