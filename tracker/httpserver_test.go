package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

// twinServers returns two trackers in the same state with the same seeded
// sources, a trusting proxy's X-Forwarded-For and a tight per-address rate
// limit: whatever one answers, the other must answer the same.
func twinServers() (*Server, *Server) {
	mk := func() *Server {
		clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		return New(Config{
			Interval: 10 * time.Second, MaxPeers: 50, Clock: clk, Rand: rand.New(rand.NewPCG(7, 7)), Logger: quiet,
			AllowUnsigned: true, TrustForwarded: true, RatePerIP: 1, BurstPerIP: 2, RatePerPrefix: -1,
		})
	}
	return mk(), mk()
}

// TestFastPathAnswersAsHandler sends the same announces, good and bad, to
// a tracker's net/http Handler and to the handler Serve runs, and wants
// the same status, headers and body from both (the announce interval
// aside: it is jittered).
func TestFastPathAnswersAsHandler(t *testing.T) {
	viaNet, viaFast := twinServers()
	fast := viaFast.fastHandler()
	good := func(peer string) []byte {
		b, _ := json.Marshal(req("c", peer, "eu", 1))
		return b
	}
	xff := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {"10.9.9.9, " + ip}} }
	steps := []struct {
		name   string
		hdr    http.Header
		body   []byte
		status int
	}{
		{"first peer", xff("198.18.0.1"), good("p1"), 200},
		{"second peer learns the first", xff("198.18.0.2"), good("p2"), 200},
		{"malformed JSON", xff("198.18.0.3"), []byte(`{"content":`), 400},
		{"field out of limits", xff("198.18.0.3"), []byte(`{"content":"x","peer":"p"}`), 400},
		{"forwarded address not an IP", xff("not-an-ip"), good("p3"), 400},
		{"burst used up", xff("198.18.0.1"), good("p1"), 200},
		{"rate limited with Retry-After", xff("198.18.0.1"), good("p1"), 429},
		{"stopped", xff("198.18.0.2"), func() []byte {
			r := req("c", "p2", "eu", 1)
			r.Event = discovery.EventStopped
			b, _ := json.Marshal(r)
			return b
		}(), 200},
	}
	for _, st := range steps {
		ns, nh, nb := postNetHTTP(t, viaNet, "127.0.0.1:40000", st.hdr, st.body)
		fs, fh, fb := postFast(t, fast, "127.0.0.1:40000", st.hdr, st.body)
		if ns != st.status || fs != st.status {
			t.Fatalf("%s: net/http %d, fast path %d, want %d: %s / %s", st.name, ns, fs, st.status, nb, fb)
		}
		for _, k := range []string{"Content-Type", "Cache-Control", "Retry-After"} {
			if nh.Get(k) != fh.Get(k) {
				t.Errorf("%s: %s %q through net/http, %q on the fast path", st.name, k, nh.Get(k), fh.Get(k))
			}
		}
		if st.status == 429 && fh.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", st.name)
		}
		if st.status == 200 {
			nb, fb = withoutInterval(t, nb), withoutInterval(t, fb)
		}
		if !bytes.Equal(nb, fb) {
			t.Errorf("%s: bodies differ:\nnet/http  %s\nfast path %s", st.name, nb, fb)
		}
	}
	for _, series := range []string{`shoal_tracker_announces_total{result="ok"}`, `shoal_tracker_announces_total{result="invalid"}`, `shoal_tracker_announces_total{result="limited"}`} {
		if n, f := metricLabel(t, viaNet, series), metricLabel(t, viaFast, series); n != f || n == 0 {
			t.Errorf("%s: %v through net/http, %v on the fast path; want equal and above 0", series, n, f)
		}
	}
}

// withoutInterval is an announce answer with its jittered interval_s
// taken out, the rest as sent.
func withoutInterval(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	if _, ok := m["interval_s"]; !ok {
		t.Fatalf("answer %s has no interval_s", b)
	}
	delete(m, "interval_s")
	out, _ := json.Marshal(m)
	return out
}

// TestServeOnePortForEverything runs the tracker's real server on
// loopback: announces on its fast path, every other endpoint (probes,
// metrics, admin, policy) on the same port with Handler's answers, an
// oversized announce refused as Handler refuses it, and a clean stop.
func TestServeOnePortForEverything(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newTestServer(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	c := &http.Client{Timeout: 30 * time.Second}
	do := func(method, path string, hdr http.Header, body []byte) (int, http.Header, string) {
		t.Helper()
		rq, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		for k, v := range hdr {
			rq.Header[k] = v
		}
		resp, err := c.Do(rq)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	for i := range 3 {
		b, _ := json.Marshal(req("c", fmt.Sprintf("p%d", i), "eu", 1))
		status, h, body := do("POST", discovery.AnnouncePath, nil, b)
		var ar discovery.AnnounceResponse
		if status != 200 || h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" || json.Unmarshal([]byte(body), &ar) != nil {
			t.Fatalf("announce %d: HTTP %d %v: %s", i, status, h, body)
		}
		if len(ar.Peers) != i {
			t.Errorf("announce %d: %d peers, want the %d before it", i, len(ar.Peers), i)
		}
	}
	big := append([]byte(`{"content":"`), bytes.Repeat([]byte("a"), discovery.MaxBodyBytes)...)
	status, _, body := do("POST", discovery.AnnouncePath, nil, big)
	if status != 400 || !strings.Contains(body, `"field":"body"`) || !strings.Contains(body, "larger than") {
		t.Errorf("oversized announce: HTTP %d %s, want 400 naming the body", status, body)
	}
	checks := []struct {
		method, path string
		hdr          http.Header
		status       int
		has          string
	}{
		{"GET", "/healthz", nil, 200, ""},
		{"GET", "/readyz", nil, 200, ""},
		{"GET", "/metrics", nil, 200, `shoal_tracker_announces_total{result="ok"} 3`},
		{"GET", "/metrics", nil, 200, `shoal_tracker_announces_total{result="invalid"} 1`},
		{"GET", "/api/swarms", http.Header{"Authorization": {"Bearer " + testAdminToken}}, 200, `"peers":3`},
		{"GET", "/api/swarms", nil, 401, "admin token"},
		{"GET", discovery.AnnouncePath, nil, 405, ""},
		{"GET", "/nowhere", nil, 404, ""},
	}
	// Other endpoints' bodies: the handler's own refusal within the
	// server's bound, the server's 413 past it.
	status, _, body = do("POST", discovery.TelemetryPath, nil, []byte(`{"v":1}`))
	if status != 400 || !strings.Contains(body, `"field"`) {
		t.Errorf("bad telemetry report: HTTP %d %s, want the handler's 400 naming a field", status, truncate(body, 300))
	}
	status, _, _ = do("POST", discovery.TelemetryPath, nil, bytes.Repeat([]byte(" "), maxSmallBody+1))
	if status != 413 {
		t.Errorf("telemetry body over %d bytes: HTTP %d, want 413", maxSmallBody, status)
	}
	// Only the endpoints that take a body get room for one before their
	// handler runs; the policy upload's room needs the admin token.
	admin := http.Header{"Authorization": {"Bearer " + testAdminToken}}
	bigPolicy := bytes.Repeat([]byte(" "), 8<<10)
	for _, ck := range []struct {
		method, path string
		hdr          http.Header
		status       int
	}{
		{"PUT", PolicyAPIPath, nil, 413},         // no token: no room
		{"PUT", PolicyAPIPath, admin, 404},       // the handler: this tracker has no operator key
		{"PUT", "/elsewhere", admin, 413},        // the token opens the policy upload only
		{"GET", "/api/swarms", admin, 413},       // a GET with a body
		{"POST", "/no-such-endpoint", nil, 413},  // an unknown path
		{"POST", discovery.ReportPath, nil, 400}, // the handler's refusal
	} {
		if status, _, body := do(ck.method, ck.path, ck.hdr, bigPolicy); status != ck.status {
			t.Errorf("%s %s with an 8 KiB body (auth %v): HTTP %d %q, want %d", ck.method, ck.path, ck.hdr != nil, status, truncate(body, 200), ck.status)
		}
	}
	for _, ck := range checks {
		status, _, body := do(ck.method, ck.path, ck.hdr, nil)
		if status != ck.status || !strings.Contains(body, ck.has) {
			t.Errorf("%s %s: HTTP %d %q, want %d with %q", ck.method, ck.path, status, truncate(body, 300), ck.status, ck.has)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v, want nil on a clean stop", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("still accepting connections after Serve returned")
	}
}

// TestKeepAliveAnswersAreTheirOwn: answers written from pooled buffers
// handed to the server's responses (no copy) stay each request's own. One
// tracker on its real server over 4 keep-alive connections, its twin
// through Handler, the same peers joining one swarm in the same order:
// every answer on the wire is the twin's, from the empty swarm to full
// samples (the answers grow past the smallest buffer worth pooling), on
// connections kept alive.
func TestKeepAliveAnswersAreTheirOwn(t *testing.T) {
	viaNet, viaServe := twinServers()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- viaServe.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	}()
	var dials atomic.Int32
	tr := &http.Transport{MaxIdleConnsPerHost: 4, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	const peers = 240
	for i := range peers {
		// Peer IDs as long as real ones, so 50 peers pass minPooledBuf.
		r := req("c", fmt.Sprintf("12D3KooWpeer%03d%s", i, strings.Repeat("x", 40)), fmt.Sprintf("r%d", i%3), int64(i%2))
		ip := fmt.Sprintf("198.18.%d.%d", i%40, 1+i/40)
		r.Addrs = []string{"/ip4/" + ip + "/tcp/4001"}
		b, _ := json.Marshal(r)
		hdr := http.Header{"X-Forwarded-For": {ip}}
		_, _, want := postNetHTTP(t, viaNet, "127.0.0.1:40000", hdr, b)
		// Four requests in flight at once: the announce and three
		// malformed ones, whose small answers are copied, not pooled.
		var wg sync.WaitGroup
		got := make([][]byte, 4)
		codes := make([]int, 4)
		for j := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, h := b, hdr
				if j > 0 { // a malformed announce: a small answer of its own
					body, h = []byte(fmt.Sprintf(`{"content":"x%d"}`, j)), http.Header{"X-Forwarded-For": {"198.19.0.1"}}
				}
				rq, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+discovery.AnnouncePath, bytes.NewReader(body))
				rq.Header = h
				resp, err := c.Do(rq)
				if err != nil {
					t.Errorf("announce %d/%d: %v", i, j, err)
					return
				}
				defer resp.Body.Close()
				got[j], _ = io.ReadAll(resp.Body)
				codes[j] = resp.StatusCode
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if codes[0] != 200 || !bytes.Equal(withoutInterval(t, got[0]), withoutInterval(t, want)) {
			t.Fatalf("announce %d: HTTP %d\n%s\nwant\n%s", i, codes[0], got[0], want)
		}
		for j := 1; j < 4; j++ {
			if codes[j] != 400 || !bytes.Contains(got[j], []byte(`"field":`)) {
				t.Fatalf("malformed announce %d/%d: HTTP %d %s, want 400 naming a field", i, j, codes[j], got[j])
			}
		}
		if i == peers-1 && len(want) < minPooledBuf {
			t.Fatalf("the last answer is %d bytes: the test never passed the %d of a pooled buffer", len(want), minPooledBuf)
		}
	}
	// The client may dial anew when a connection is not back in its idle
	// pool in time, but most requests must ride kept-alive connections.
	if n := dials.Load(); n > peers {
		t.Errorf("%d connections dialled for %d requests, 4 in flight: answers did not keep their connections alive", n, 4*peers)
	}
}

// TestFastPathLogsRejectedRemote: the fast path prints a connection's
// address only when debug lines are written, and then as before: a
// rejected announce's line names the client's address and port.
func TestFastPathLogsRejectedRemote(t *testing.T) {
	var logs bytes.Buffer
	s := New(Config{Interval: 10 * time.Second, MaxPeers: 50, Clock: &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), AllowUnsigned: true})
	if status, _, body := postFast(t, s.fastHandler(), "198.18.4.5:40123", nil, []byte(`{"content":`)); status != 400 {
		t.Fatalf("malformed announce: HTTP %d %s, want 400", status, body)
	}
	if !strings.Contains(logs.String(), "announce rejected") || !strings.Contains(logs.String(), "remote=198.18.4.5:40123") {
		t.Errorf("debug log %q: want the rejection with remote=198.18.4.5:40123", logs.String())
	}
}
