package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/accesslog"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestProbesBuildInfoAndAccessLog: a served tracker answers /healthz and
// /readyz (an added check failing turns /readyz to 503 with its reason),
// exports shoal_build_info, and logs an announce in the shared access log
// format; probes are not logged.
func TestProbesBuildInfoAndAccessLog(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	al, err := accesslog.Open(accesslog.Config{Path: logPath})
	if err != nil {
		t.Fatal(err)
	}
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := New(Config{Interval: 10 * time.Second, Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)), Logger: quiet,
		AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1, AccessLog: al})
	var storeErr error
	s.AddReadyCheck("store", func() error { return storeErr })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + ln.Addr().String()

	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := httpGet(t, base+p); code != 200 || body != "ok\n" {
			t.Fatalf("%s: %d %q", p, code, body)
		}
	}
	storeErr = errors.New("redis 127.0.0.1:6379 unreachable")
	if code, body := httpGet(t, base+"/readyz"); code != 503 || body != "not ready: store: redis 127.0.0.1:6379 unreachable\n" {
		t.Fatalf("/readyz with a failing check: %d %q", code, body)
	}
	storeErr = nil

	body, _ := json.Marshal(req("movie", "peer-a", "eu", 100))
	resp, err := http.Post(base+discovery.AnnouncePath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("announce: %d", resp.StatusCode)
	}
	if _, metrics := httpGet(t, base+"/metrics"); !strings.Contains(metrics, "shoal_build_info{") {
		t.Fatal("/metrics lacks shoal_build_info")
	}

	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := accesslog.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 {
		t.Fatalf("want 2 lines (announce, metrics), got %+v", lines)
	}
	e := lines[0]
	if e.Daemon != "tracker" || e.Method != "POST" || e.Path != discovery.AnnouncePath || e.Status != 200 || e.Bytes == 0 || !strings.HasPrefix(e.Remote, "~") {
		t.Fatalf("announce line: %+v", e)
	}
}
