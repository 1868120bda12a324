//go:build e2e

// End-to-end tests of the operator basics with real processes: shoal
// version, the probes, shoal_build_info, JSON logs, the access log of each
// HTTP daemon, and promtool's verdict on real /metrics scrapes.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/accesslog"
	"github.com/shoal-cdn/shoal/discovery"
)

// TestVersionCommand: `shoal version` prints the version, revision, build
// date and Go version; --json one object with the same; -ldflags -X values
// win over what the build recorded.
func TestVersionCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "shoal")
	const pkg = "github.com/shoal-cdn/shoal/buildinfo"
	out, err := exec.Command("go", "build", "-o", bin, "-ldflags",
		"-X "+pkg+".Version=v9.8.7 -X "+pkg+".Revision=0123abcd -X "+pkg+".Date=2026-11-30T12:00:00Z", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	o, e, code := runBin(t, bin, "version")
	if code != 0 {
		t.Fatalf("version exit %d: %s", code, e)
	}
	for _, want := range []string{"shoal v9.8.7\n", "revision: 0123abcd\n", "built:    2026-11-30T12:00:00Z\n", "go:       go1.", "github.com/libp2p/go-libp2p v0.51.0"} {
		if !strings.Contains(o, want) {
			t.Errorf("version output lacks %q:\n%s", want, o)
		}
	}
	o, e, code = runBin(t, bin, "version", "--json")
	var in struct {
		Version, Revision string
		Go                string `json:"go_version"`
	}
	if code != 0 || json.Unmarshal([]byte(o), &in) != nil || in.Version != "v9.8.7" || in.Revision != "0123abcd" || !strings.HasPrefix(in.Go, "go1.") {
		t.Fatalf("version --json: exit %d, %q %s", code, o, e)
	}
	if o2, _, code := runBin(t, bin, "--version"); code != 0 || !strings.HasPrefix(o2, "shoal v9.8.7\n") {
		t.Fatalf("--version: exit %d, %q", code, o2)
	}
}

// TestOperatorBasicsEndToEnd: origin, tracker and peer, each with an access
// log (set through env twins and flags) and JSON logs: every daemon answers
// /healthz and /readyz and exports shoal_build_info; a ranged request
// through the gateway leaves one line per daemon in the shared access log
// format, under the request ID the client sent; every log line on stderr is
// JSON; and promtool accepts each daemon's /metrics.
func TestOperatorBasicsEndToEnd(t *testing.T) {
	r := newFxRig(t)
	c := r.publish("basics", fxFile{"app.bin", 3*fxChunk + 100, 1401})
	logs := t.TempDir()
	originLog, trackerLog, gatewayLog := filepath.Join(logs, "origin.log"), filepath.Join(logs, "tracker.log"), filepath.Join(logs, "gateway.log")
	t.Setenv("SHOAL_ORIGIN_ACCESS_LOG", originLog)
	t.Setenv("SHOAL_ORIGIN_LOG_FORMAT", "json")
	t.Setenv("SHOAL_ORIGIN_LOG_LEVEL", "debug")
	r.startOrigin()
	addr := freePort(t)
	r.trackerURL = "http://" + addr
	tracker := r.start("tracker", "tracker", "--listen", addr, "--interval", "1s", "--access-log", trackerLog, "--log-format", "json")
	r.up("tracker", r.trackerURL+"/metrics", tracker)
	peer := r.startPeer("peer", "--access-log", gatewayLog, "--log-format", "json")

	daemons := map[string]string{"origin": r.originURL, "tracker": r.trackerURL, "gateway": peer.gw}
	for name, base := range daemons {
		for _, p := range []string{"/healthz", "/readyz"} {
			if resp := fxDo(t, "GET", base+p); resp.status != 200 || string(resp.body) != "ok\n" {
				t.Fatalf("%s %s: %d %q %v", name, p, resp.status, resp.body, resp.err)
			}
		}
	}

	const reqID = "e2e-basics-request-1"
	resp := fxDo(t, "GET", peer.gw+"/c/"+c.id+"/app.bin", "Range", "bytes=1000-1999", "X-Request-Id", reqID, "User-Agent", "e2e-player/1")
	if resp.err != nil || resp.status != 206 || resp.n != 1000 {
		t.Fatalf("ranged gateway GET: %d, %d bytes, %v", resp.status, resp.n, resp.err)
	}
	if !bytes.Equal(resp.body, c.sourceRange(t, "app.bin", 1000, 1000)) {
		t.Fatal("ranged gateway GET: bytes differ from the source")
	}
	// The peer announces to the tracker once it has joined.
	waitFor(t, "tracker sees the peer", fxDeadline, func() (bool, string) {
		m := fxDo(t, "GET", r.trackerURL+"/metrics")
		return strings.Contains(string(m.body), "\nshoal_tracker_peers 1\n"), "no peer yet"
	})

	promtool, promErr := exec.LookPath("promtool")
	for name, base := range daemons {
		m := fxDo(t, "GET", base+"/metrics")
		if m.status != 200 || !strings.Contains(string(m.body), "shoal_build_info{goversion=\"go1.") {
			t.Fatalf("%s /metrics: %d, no shoal_build_info", name, m.status)
		}
		if promErr != nil {
			continue
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(m.body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on the %s's /metrics: %v\n%s", name, err, out)
		}
	}
	if promErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("promtool not found (.ci/run installs Debian's prometheus package): %v", promErr)
		}
		t.Logf("promtool not found, /metrics not checked by it (install Debian's prometheus package): %v", promErr)
	}

	// Stopping flushes the access logs.
	peer.stop(t)
	r.origin.stop(t)
	tracker.stop(t)
	for _, p := range []*fxProc{peer.fxProc, r.origin, tracker} {
		checkJSONLog(t, p)
	}

	gw := readAccessLog(t, gatewayLog, "gateway")
	var found bool
	for _, e := range gw {
		if e.RequestID == reqID {
			found = true
			if e.Method != "GET" || e.Path != "/c/"+c.id+"/app.bin" || e.Status != 206 || e.Bytes != 1000 ||
				e.Range != "bytes=1000-1999" || e.UserAgent != "e2e-player/1" || !strings.HasPrefix(e.Remote, "~") {
				t.Errorf("gateway line: %+v", e)
			}
		}
		if strings.HasPrefix(e.Path, "/healthz") || strings.HasPrefix(e.Path, "/readyz") {
			t.Errorf("probe logged: %+v", e)
		}
	}
	if !found {
		t.Fatalf("no gateway access log line with request id %q: %+v", reqID, gw)
	}
	orig := readAccessLog(t, originLog, "origin")
	if !hasLine(orig, func(e accesslog.Entry) bool { return strings.HasPrefix(e.Path, "/manifests/") && e.Status == 200 }) {
		t.Errorf("origin access log has no manifest request: %+v", orig)
	}
	tr := readAccessLog(t, trackerLog, "tracker")
	if !hasLine(tr, func(e accesslog.Entry) bool {
		return e.Method == "POST" && e.Path == discovery.AnnouncePath && e.Status == 200
	}) {
		t.Errorf("tracker access log has no accepted announce: %+v", tr)
	}
}

func readAccessLog(t *testing.T, path, daemon string) []accesslog.Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := accesslog.Parse(f)
	if err != nil {
		t.Fatalf("%s access log: %v", daemon, err)
	}
	if len(lines) == 0 {
		t.Fatalf("%s access log is empty", daemon)
	}
	for _, e := range lines {
		if e.Daemon != daemon {
			t.Fatalf("%s access log: line of daemon %q", daemon, e.Daemon)
		}
	}
	return lines
}

func hasLine(lines []accesslog.Entry, ok func(accesslog.Entry) bool) bool {
	for _, e := range lines {
		if ok(e) {
			return true
		}
	}
	return false
}

// checkJSONLog: every line the daemon wrote on stderr is a JSON object with
// time, level and msg.
func checkJSONLog(t *testing.T, p *fxProc) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(p.log.String()))
	n := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("%s: log line is not JSON: %q", p.name, sc.Text())
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: log line lacks %q: %q", p.name, k, sc.Text())
			}
		}
		n++
	}
	if n == 0 {
		t.Errorf("%s wrote no log line", p.name)
	}
}
