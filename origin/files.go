package origin

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/shoal-cdn/shoal/layout"
)

// Header values for the two kinds of file in a layout.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheMutable   = "no-cache"
	// exposedHeaders are the response headers a browser peer's script
	// needs to read when it fetches ranges cross-origin.
	exposedHeaders = "Content-Length, Content-Range, Accept-Ranges, ETag"
)

// serveFile serves one plain file under s.dir. Every refusal (bad path,
// missing file, directory, symlink out of the tree) is a plain 404, so a
// probe learns nothing about what lies outside the layout.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := cleanName(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		s.log.Error("origin: open layout root", "dir", s.dir, "err", err)
		http.Error(w, "layout unavailable", http.StatusInternalServerError)
		return
	}
	defer root.Close()
	// Stat before Open: opening a FIFO or device would block or misbehave.
	// os.Root refuses symlinks (and ..) that resolve outside s.dir, and
	// absolute symlinks altogether; relative links within it are followed.
	fi, err := root.Stat(name)
	if err != nil {
		s.refuse(w, r, name, err)
		return
	}
	if !fi.Mode().IsRegular() {
		http.NotFound(w, r) // directories are never listed
		return
	}
	f, err := root.Open(name)
	if err != nil {
		s.refuse(w, r, name, err)
		return
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r) // swapped between Stat and Open
		return
	}

	h.Set("Access-Control-Expose-Headers", exposedHeaders)
	h.Set("X-Content-Type-Options", "nosniff")
	if layout.IsImmutable(name) {
		// The name is the hash of the bytes, so it is the perfect strong validator.
		h.Set("ETag", `"`+path.Base(name)+`"`)
		h.Set("Cache-Control", cacheImmutable)
		if strings.HasPrefix(name, layout.ManifestDir+"/") {
			h.Set("Content-Type", "application/json")
			h.Set("Vary", "Accept-Encoding")
			if acceptsGzip(r) {
				if b, ok := s.gzip.get(name, f, fi.Size()); ok {
					serveGzip(w, r, path.Base(name), fi.ModTime(), b)
					return
				}
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					http.Error(w, "manifest unreadable", http.StatusInternalServerError)
					return
				}
			}
		} else {
			h.Set("Content-Type", "application/octet-stream")
		}
	} else {
		if pathKind(name) == kindChannelUpdate && serveChannelUpdate(w, r, name, f, fi) {
			return
		}
		h.Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.ModTime().UnixNano(), fi.Size()))
		h.Set("Cache-Control", cacheMutable)
		if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
			h.Set("Content-Type", ct)
		} // else ServeContent sniffs the first 512 bytes
	}
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// refuse answers a failed lookup of name.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, name string, err error) {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		http.NotFound(w, r)
	case errors.Is(err, fs.ErrPermission):
		s.log.Warn("origin: permission denied", "path", name, "err", err)
		http.Error(w, "forbidden", http.StatusForbidden)
	default:
		// Chiefly a symlink leading out of the layout: a misconfiguration
		// worth a log line, but to the client just another missing file.
		s.log.Warn("origin: refused path", "path", name, "err", err)
		http.NotFound(w, r)
	}
}

// cleanName turns a request path into a name relative to the layout root,
// or reports false when the path is not one the origin will serve: empty,
// a directory (trailing slash), or containing ".", "..", empty or hidden
// (dot-prefixed) segments, backslashes or NULs. r.URL.Path is already
// percent-decoded, so "%2e%2e" arrives here as "..".
func cleanName(p string) (string, bool) {
	name, ok := strings.CutPrefix(p, "/")
	if !ok || !fs.ValidPath(name) || name == "." || strings.ContainsAny(name, "\\\x00") {
		return "", false
	}
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") {
			return "", false
		}
	}
	return name, true
}
