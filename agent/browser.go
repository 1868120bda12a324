package agent

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/shoal-cdn/shoal/manifest"
)

// What browsers need of the gateway: CORS (Fetch standard) and Private
// Network Access answers, and If-Range.
//
// Content (/c/…) and live channels (/live/…) are public, content-addressed
// bytes, verified against a publisher's signature: any page may read them,
// so a player on a site of its own (hls.js, dash.js, Shaka) can play
// through the local gateway. Every response says so with
// Access-Control-Allow-Origin: *, and a preflight is answered for any
// origin, including Private Network Access's (a page on a public origin
// calling this loopback gateway).
//
// Status (/api/status) and metrics (/metrics) are not public: they list
// the contents this machine watches, its playback sessions and its network
// addresses. Read cross-origin, they would let any site a viewer visits
// learn what the viewer watches. They are open only to the origins in
// PeerConfig.StatusOrigins (shoal peer --status-origins; "*" for any), and
// to none by default; same-origin pages, curl and Prometheus need no CORS.
const (
	corsAllowMethods = "GET, HEAD, OPTIONS"
	// Headers players and scripts send: byte ranges and their validators,
	// and Shoal's prefetch policy.
	corsAllowHeaders = "Range, If-Range, If-None-Match, If-Modified-Since, Authorization, " + PrefetchHeader
	// Response headers a page may read beyond the CORS-safelisted ones
	// (Content-Type, Cache-Control…): players read Content-Range and
	// Content-Length to size ranges, and ETag to revalidate.
	corsExposeHeaders = "Content-Range, Content-Length, ETag, Accept-Ranges"
	// corsMaxAge is how long a browser may reuse a preflight's answer, in
	// seconds (Chromium caps it at 7200).
	corsMaxAge = "7200"
)

// isPublicRoute reports whether path is public content readable by any
// origin.
func isPublicRoute(path string) bool {
	return strings.HasPrefix(path, "/c/") || strings.HasPrefix(path, "/live/")
}

// withCORS wraps the gateway's routes: it answers OPTIONS (a CORS
// preflight, or a plain OPTIONS) on every route with 204 and the methods
// allowed, and adds the CORS headers to every response. statusOrigins are
// the origins allowed to read the non-public routes.
func withCORS(mux *http.ServeMux, statusOrigins []string) http.Handler {
	anyStatus := slices.Contains(statusOrigins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The gateway serves every publisher's files on one origin: no type
		// sniffing, so a file is never taken for a page or a script.
		h.Set("X-Content-Type-Options", "nosniff")
		origin := r.Header.Get("Origin")
		allow := ""
		switch {
		case isPublicRoute(r.URL.Path) || anyStatus:
			allow = "*"
		case len(statusOrigins) > 0:
			// The answer depends on the Origin: caches must key on it.
			h.Add("Vary", "Origin")
			if origin != "" && slices.Contains(statusOrigins, origin) {
				allow = origin
			}
		}
		if allow != "" {
			h.Set("Access-Control-Allow-Origin", allow)
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		if r.Method != http.MethodOptions {
			mux.ServeHTTP(w, r)
			return
		}
		// OPTIONS on a route that exists (the mux knows its GET): 204 with
		// what the route allows; elsewhere the mux's own 404.
		get := r.Clone(r.Context())
		get.Method = http.MethodGet
		if _, pattern := mux.Handler(get); pattern == "" {
			mux.ServeHTTP(w, r)
			return
		}
		h.Set("Allow", corsAllowMethods)
		if allow != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			if strings.EqualFold(r.Header.Get("Access-Control-Request-Private-Network"), "true") {
				h.Set("Access-Control-Allow-Private-Network", "true")
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// fileETag is the strong entity tag of a published file: its Merkle root,
// which changes with any byte.
func fileETag(f manifest.File) string { return `"` + f.Root.String() + `"` }

// rangeHeader is the request's Range, or "" when an If-Range makes it void
// (RFC 9110 §13.1.5): the range applies only if If-Range is an entity tag
// that strongly matches etag; a weak tag, another tag or a date (the
// gateway sends no Last-Modified) means the whole file, 200.
func rangeHeader(r *http.Request, etag string) string {
	rg := r.Header.Get("Range")
	if rg == "" {
		return ""
	}
	if ir := strings.TrimSpace(r.Header.Get("If-Range")); ir != "" && ir != etag {
		return ""
	}
	return rg
}

// ParseOrigins parses a comma-separated list of web origins
// (scheme://host[:port], as browsers send in Origin) or "*".
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for o := range strings.SplitSeq(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
				u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				return nil, fmt.Errorf("origin %q: want scheme://host[:port] (e.g. https://ops.example.com) or *", o)
			}
		}
		out = append(out, o)
	}
	return out, nil
}
