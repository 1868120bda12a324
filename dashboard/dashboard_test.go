package dashboard

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, method, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, req)
	return w
}

// TestServesPageAndScripts: the page and every file it loads come back
// with their types, the policy, and a validator that answers 304.
func TestServesPageAndScripts(t *testing.T) {
	for _, tc := range []struct{ path, ctype, contains string }{
		{Path, "text/html; charset=utf-8", `<script src="dashboard.js"`},
		{Path + "dashboard.js", "text/javascript; charset=utf-8", "api/fleet"},
		{Path + "dashboard.css", "text/css; charset=utf-8", ".card"},
		{Path + "uplot/uPlot.iife.min.js", "text/javascript; charset=utf-8", "uPlot"},
		{Path + "uplot/uPlot.min.css", "text/css; charset=utf-8", ".uplot"},
	} {
		w := get(t, "GET", tc.path)
		if w.Code != 200 || w.Header().Get("Content-Type") != tc.ctype || !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tc.path, w.Code, w.Header().Get("Content-Type"), tc.contains, strings.Contains(w.Body.String(), tc.contains))
		}
		if got := w.Header().Get("Content-Security-Policy"); got != CSP {
			t.Errorf("GET %s: CSP %q", tc.path, got)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", tc.path, w.Header())
		}
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", tc.path)
			continue
		}
		if w := get(t, "GET", tc.path, "If-None-Match", etag); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Errorf("GET %s If-None-Match %s: %d, %d bytes", tc.path, etag, w.Code, w.Body.Len())
		}
		if h := get(t, "HEAD", tc.path); h.Code != 200 || h.Body.Len() != 0 || h.Header().Get("Content-Length") != w.Header().Get("Content-Length") {
			t.Errorf("HEAD %s: %d, %d bytes, length %q", tc.path, h.Code, h.Body.Len(), h.Header().Get("Content-Length"))
		}
	}
}

// TestRefusesOtherPathsAndMethods: nothing but the embedded files, and
// nothing but reads.
func TestRefusesOtherPathsAndMethods(t *testing.T) {
	for _, p := range []string{Path + "index.html", Path + "nope.js", Path + "uplot/LICENSE", Path + "uplot/VERSION", Path + "../go.mod", "/other/"} {
		if w := get(t, "GET", p); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
	if w := get(t, "POST", Path); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST %s: %d, Allow %q", Path, w.Code, w.Header().Get("Allow"))
	}
}

// TestPageLoadsOnlyItsOwnFiles: every script and stylesheet the page
// names is relative and served here (the page works offline), and the page
// has no inline script or style the policy would block.
func TestPageLoadsOnlyItsOwnFiles(t *testing.T) {
	page := get(t, "GET", Path).Body.String()
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("page names %d files: %q", len(refs), refs)
	}
	for _, m := range refs {
		ref := m[1]
		if strings.Contains(ref, ":") || strings.HasPrefix(ref, "/") {
			t.Errorf("page loads %q: not a path on this server", ref)
			continue
		}
		if w := get(t, "GET", Path+ref); w.Code != 200 {
			t.Errorf("page loads %q: %d", ref, w.Code)
		}
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]|<style|\sstyle="|\son[a-z]+="`).MatchString(page) {
		t.Error("page has inline script or style, which its policy blocks")
	}
	js := get(t, "GET", Path+"dashboard.js").Body.String()
	if regexp.MustCompile(`https?://`).MatchString(js) {
		t.Error("dashboard.js names an absolute URL: everything must come from the tracker")
	}
	if strings.Contains(js, "?token") || strings.Contains(js, "&token") {
		t.Error("dashboard.js puts the token in a query string")
	}
}

// TestVendoredChartLibraryIsRecorded: the vendored uPlot files are the
// ones static/uplot/VERSION names, by hash, with the licence beside them.
func TestVendoredChartLibraryIsRecorded(t *testing.T) {
	f, err := os.Open("static/uplot/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^\s+([0-9a-f]{64})\s+(\S+)`)
	var checked int
	var version bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "version:") && strings.Contains(sc.Text(), "1.6.32") {
			version = true
		}
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		b, err := static.ReadFile("static/uplot/" + m[2])
		if err != nil {
			t.Errorf("VERSION names %s: %v", m[2], err)
			continue
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != m[1] {
			t.Errorf("%s: sha256 %x, VERSION says %s", m[2], sum, m[1])
		}
		if !strings.Contains(string(b), "1.6.32") && strings.HasSuffix(m[2], ".js") {
			t.Errorf("%s does not say it is version 1.6.32", m[2])
		}
		checked++
	}
	if checked != 2 || !version {
		t.Errorf("VERSION records %d files (want 2), version line found: %v", checked, version)
	}
	lic, err := os.ReadFile("static/uplot/LICENSE")
	if err != nil || !strings.Contains(string(lic), "MIT License") {
		t.Errorf("static/uplot/LICENSE: %v", err)
	}
}
