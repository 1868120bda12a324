// Package dashboard is the operator's fleet dashboard: a web page, embedded
// in the binary, that draws what the tracker's GET /api/fleet returns
// (offload, origin egress, P95 start-up, rebuffering per hour watched,
// rare-chunk scarcity and peers over time, sliced by tenant, region,
// network, device class and cohort, with the cohorts side by side and the
// alert thresholds drawn). The charts are uPlot, vendored from npm in
// static/uplot (its VERSION file says which release and its hashes).
//
// Everything the page loads comes from the server that serves it: no
// network access elsewhere, enforced by its Content-Security-Policy. The
// page reads the tracker's admin token from its URL fragment
// (/dashboard/#token=…), which browsers never send to a server, and sends
// it as Authorization: Bearer.
//
// It imports nothing of Shoal's; the tracker mounts Handler at Path.
package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Path is where the page lives; Handler serves the subtree under it.
const Path = "/dashboard/"

// CSP is the page's Content-Security-Policy: scripts, styles and data from
// its own origin only, no frames, no plugins, no form posts.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed static/index.html static/dashboard.js static/dashboard.css static/uplot/uPlot.iife.min.js static/uplot/uPlot.min.css
var static embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// assets maps a name under Path ("" is the page) to its file. Built once:
// the files are part of the binary.
var assets = func() map[string]asset {
	types := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
	}
	m := map[string]asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		name := strings.TrimPrefix(p, "static/")
		if name == "index.html" {
			name = ""
		}
		m[name] = asset{body: b, ctype: types[path.Ext(p)], etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("dashboard: embedded files unreadable: " + err.Error()) // cannot happen: they are compiled in
	}
	return m
}()

// Handler serves the page and its scripts under Path, for GET and HEAD. It
// holds no secrets and needs no credential: the data it draws does.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: the dashboard is read with GET", http.StatusMethodNotAllowed)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Path)
		a, found := assets[name]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		// Revalidated on every load, so a new binary's page is never mixed
		// with an old cached script; unchanged files cost a 304.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		if r.Header.Get("If-None-Match") == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", a.ctype)
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
		if r.Method == http.MethodHead {
			return
		}
		w.Write(a.body)
	})
}
