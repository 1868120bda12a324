// Package health serves the two probe endpoints every Shoal daemon with an
// HTTP listener has: /healthz (the process is alive: always 200 "ok") and
// /readyz (ready to serve: 200 "ok", or 503 with one short plain line per
// failing check). Each daemon decides what its checks are. Probes are cheap
// by contract: a check reads state the daemon already keeps and does no I/O
// beyond a stat. A building block: the roles import it.
package health

import (
	"net/http"
	"strings"
	"sync"
)

// Paths of the probe endpoints.
const (
	LivePath  = "/healthz"
	ReadyPath = "/readyz"
)

// Check says why the daemon is not ready, or nil when this part is.
type Check func() error

// Checks is a daemon's readiness checks. The zero value is ready.
// It is safe for concurrent use.
type Checks struct {
	mu     sync.Mutex // guards names and checks
	names  []string
	checks []Check
}

// Add registers a named check; /readyz reports "name: error" when it fails.
func (c *Checks) Add(name string, check Check) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = append(c.names, name)
	c.checks = append(c.checks, check)
}

// Ready runs every check and returns the failures as "name: reason" lines;
// none when ready.
func (c *Checks) Ready() []string {
	c.mu.Lock()
	names, checks := c.names, c.checks
	c.mu.Unlock()
	var bad []string
	for i, ch := range checks {
		if err := ch(); err != nil {
			bad = append(bad, names[i]+": "+err.Error())
		}
	}
	return bad
}

// Live answers /healthz: 200 "ok" while the process can answer at all.
func Live(w http.ResponseWriter, r *http.Request) {
	plain(w, r, http.StatusOK, "ok\n")
}

// ReadyHandler answers /readyz from c: 200 "ok", or 503 with the failing
// checks, one a line.
func (c *Checks) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bad := c.Ready(); len(bad) > 0 {
			plain(w, r, http.StatusServiceUnavailable, "not ready: "+strings.Join(bad, "\nnot ready: ")+"\n")
			return
		}
		plain(w, r, http.StatusOK, "ok\n")
	})
}

// Route serves the probe paths (GET or HEAD) from c and everything else from
// next, ahead of next's own middleware: probes never count against rate
// limits and need no token.
func Route(c *Checks, next http.Handler) http.Handler {
	ready := c.ReadyHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			switch r.URL.Path {
			case LivePath:
				Live(w, r)
				return
			case ReadyPath:
				ready.ServeHTTP(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func plain(w http.ResponseWriter, r *http.Request, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body)) // the prober went away; nothing to do
	}
}
