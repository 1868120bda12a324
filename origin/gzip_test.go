package origin

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLargeManifestIsSentGzipped: a manifest of thousands of files goes out
// gzip-encoded to a client that accepts it (and decodes to the same bytes),
// as is to one that does not or that asks for a range.
func TestLargeManifestIsSentGzipped(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "manifests"), 0o755)
	var b strings.Builder
	b.WriteString(`{"files":[`)
	for i := range 3000 {
		b.WriteString(`{"path":"v1/seg` + strings.Repeat("0", 4) + string(rune('0'+i%10)) + `.ts","size":1000000,"chunks":4,"type":"video/mp2t","root":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},`)
	}
	b.WriteString(`{}]}`)
	body := []byte(b.String())
	name := "manifests/SWrVeOKaj177tf310dMK3u7mryetMI-DBwPZwIMzwe4"
	os.WriteFile(filepath.Join(dir, name), body, 0o644)
	s, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	get := func(hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/"+name, nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		return w
	}
	w := get(map[string]string{"Accept-Encoding": "gzip, br"})
	if w.Header().Get("Content-Encoding") != "gzip" || w.Body.Len() >= len(body)/2 {
		t.Fatalf("Content-Encoding %q, %d bytes for a %d-byte manifest", w.Header().Get("Content-Encoding"), w.Body.Len(), len(body))
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, body) {
		t.Fatal("gzip body does not decode to the manifest")
	}
	if w := get(nil); w.Header().Get("Content-Encoding") != "" || !bytes.Equal(w.Body.Bytes(), body) {
		t.Fatalf("without Accept-Encoding: Content-Encoding %q, %d bytes", w.Header().Get("Content-Encoding"), w.Body.Len())
	}
	if w := get(map[string]string{"Accept-Encoding": "gzip", "Range": "bytes=0-9"}); w.Header().Get("Content-Encoding") != "" || w.Body.String() != string(body[:10]) {
		t.Fatalf("range: Content-Encoding %q, body %q", w.Header().Get("Content-Encoding"), w.Body.String())
	}
	if w := get(map[string]string{"Accept-Encoding": "gzip;q=0"}); w.Header().Get("Content-Encoding") != "" {
		t.Fatal("gzip;q=0 got gzip")
	}
}
