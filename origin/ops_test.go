package origin

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/accesslog"
)

// TestProbesBuildInfoAndAccessLog: /healthz and /readyz answer (readiness
// follows the layout directory), /metrics carries shoal_build_info, and a
// file request leaves one access log line in the shared format (probes
// leave none).
func TestProbesBuildInfoAndAccessLog(t *testing.T) {
	f := newFixture(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	al, err := accesslog.Open(accesslog.Config{Path: logPath})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Dir: f.dir, AccessLog: al})
	if err != nil {
		t.Fatal(err)
	}
	ts := startHandler(t, s)

	for _, p := range []string{"/healthz", "/readyz"} {
		if resp, body := do(t, "GET", ts+p, nil); resp.StatusCode != 200 || string(body) != "ok\n" {
			t.Fatalf("%s: %d %q", p, resp.StatusCode, body)
		}
	}
	resp, _ := do(t, "GET", ts+"/"+f.chunk, map[string]string{"Range": "bytes=0-99"})
	if resp.StatusCode != 206 {
		t.Fatalf("chunk range: %d", resp.StatusCode)
	}
	_, metrics := do(t, "GET", ts+"/metrics", nil)
	if !strings.Contains(string(metrics), `shoal_build_info{`) || !strings.Contains(string(metrics), "shoal_access_log_lines_total") {
		t.Fatalf("/metrics lacks shoal_build_info or the access log counters")
	}

	// A layout directory gone (an unmounted volume): not ready, still alive.
	moved := f.dir + ".moved"
	if err := os.Rename(f.dir, moved); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Rename(moved, f.dir) })
	if resp, body := do(t, "GET", ts+"/readyz", nil); resp.StatusCode != 503 || !strings.HasPrefix(string(body), "not ready: origin: layout directory") {
		t.Fatalf("/readyz without the layout: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, "GET", ts+"/healthz", nil); resp.StatusCode != 200 {
		t.Fatalf("/healthz without the layout: %d", resp.StatusCode)
	}

	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	lf, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	lines, err := accesslog.Parse(lf)
	if err != nil {
		t.Fatal(err)
	}
	// The chunk and /metrics; probes are not logged.
	if len(lines) != 2 {
		t.Fatalf("want 2 access log lines (chunk, metrics), got %+v", lines)
	}
	e := lines[0]
	if e.Daemon != "origin" || e.Path != "/"+f.chunk || e.Status != 206 || e.Bytes != 100 || e.Range != "bytes=0-99" || !strings.HasPrefix(e.Remote, "~") {
		t.Fatalf("chunk line: %+v", e)
	}
}

func startHandler(t *testing.T, s *Server) string {
	t.Helper()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}
