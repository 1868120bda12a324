package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

func TestConcurrentAnnounces(t *testing.T) {
	s, _ := newTestServer(t, 10)
	const workers, perWorker, contents = 8, 100, 5
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				r := req(fmt.Sprintf("c%d", i%contents), fmt.Sprintf("w%d-p%d", w, i%20), []string{"eu", "us", ""}[i%3], int64(i%2))
				if i%10 == 9 {
					r.Event = discovery.EventStopped
				}
				b, _ := json.Marshal(r)
				if code, body := post(t, s, b); code != http.StatusOK {
					t.Errorf("HTTP %d: %s", code, body)
					return
				}
			}
		})
		wg.Go(func() { // readers race the writers
			for range 20 {
				s.Swarms()
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
				if rec.Code != http.StatusOK {
					t.Errorf("GET /metrics: HTTP %d", rec.Code)
				}
			}
		})
	}
	wg.Wait()
	// The stops (i%10 == 9) are exactly all announces of p9 and p19, so 18
	// of each worker's 20 peers remain.
	total := 0
	for _, sw := range s.Swarms() {
		total += sw.Peers
		if sw.Seeds+sw.Leechers != sw.Peers {
			t.Errorf("swarm %s: seeds %d + leechers %d != peers %d", sw.Content.Short(), sw.Seeds, sw.Leechers, sw.Peers)
		}
	}
	if want := workers * 18; total != want {
		t.Errorf("%d peers listed, want %d", total, want)
	}
	if got := metricLabel(t, s, "shoal_tracker_peers"); got != float64(total) {
		t.Errorf("peers gauge %v, swarms say %d", got, total)
	}
}

func TestServeShutsDownCleanly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()

	c, err := discovery.NewTrackerClient("http://"+ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := newPeer(t, 1)
	if _, err := c.Announce(ctx, a.signed(t, req("c", "", "", 1), time.Now())); err != nil {
		t.Fatalf("announce over the network: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v, want nil on clean stop", err)
	}
}

func TestRunReportsListenError(t *testing.T) {
	if err := Run(context.Background(), Config{Listen: "127.0.0.1:-1", Logger: quiet}); err == nil {
		t.Fatal("Run on a bad address returned nil")
	}
}

// watch wraps a tracker handler and reports each announce's peer and event
// once the tracker has answered it, so a test that waits for an announce
// knows the tracker's state includes it.
func watch(h http.Handler, seen chan<- discovery.AnnounceRequest) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != discovery.AnnouncePath {
			h.ServeHTTP(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		h.ServeHTTP(w, r)
		var req discovery.AnnounceRequest
		if json.Unmarshal(b, &req) == nil {
			select {
			case seen <- req:
			default: // the test is not listening for this one
			}
		}
	})
}

// serveOn runs a fresh tracker on addr ("127.0.0.1:0" for any port) until
// stop is called, and returns the address it got.
func serveOn(t *testing.T, addr string, seen chan<- discovery.AnnounceRequest) (s *Server, got string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s = New(Config{Interval: 20 * time.Millisecond, PeerTTL: time.Minute, Clock: core.RealClock{}, Logger: quiet})
	srv := &http.Server{Handler: watch(s.Handler(), seen)}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	return s, ln.Addr().String(), func() { srv.Close(); <-done }
}

func TestAnnouncerSurvivesTrackerRestart(t *testing.T) {
	seen := make(chan discovery.AnnounceRequest, 64)
	_, addr, stop1 := serveOn(t, "127.0.0.1:0", seen)
	client, err := discovery.NewTrackerClient("http://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	// B is registered directly; A runs an Announcer that signs.
	A, B := newPeer(t, 1), newPeer(t, 2)
	if _, err := client.Announce(context.Background(), B.signed(t, req("c", "", "", 0), time.Now())); err != nil {
		t.Fatal(err)
	}
	found := make(chan []discovery.PeerInfo, 16)
	a, err := discovery.NewAnnouncer(discovery.AnnouncerConfig{
		Tracker: client, Content: content("c"), Peer: A.id, Signer: A.key, Addrs: []string{"/ip4/127.0.0.1/tcp/4001"},
		Stats:       func() discovery.Stats { return discovery.Stats{Left: 10} },
		OnPeers:     func(p []discovery.PeerInfo) { found <- p },
		MinInterval: time.Millisecond, RetryMin: 2 * time.Millisecond, RetryMax: 10 * time.Millisecond,
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	if ps := waitFound(t, found); len(ps) != 1 || ps[0].Peer != B.id {
		t.Fatalf("A found %+v before the restart, want B", ps)
	}
	stop1() // tracker down: A's announces fail and back off

	drain(seen)
	s2, _, stop2 := serveOn(t, addr, seen) // same address, empty memory
	defer stop2()
	waitAnnounce(t, seen, A.id, "") // A is back, with a plain announce

	if _, err := client.Announce(context.Background(), B.signed(t, req("c", "", "", 0), time.Now())); err != nil {
		t.Fatal(err)
	}
	if ps := waitFound(t, found); len(ps) != 1 || ps[0].Peer != B.id {
		t.Fatalf("A found %+v after the restart, want B again", ps)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Announcer.Run = %v", err)
	}
	// Run returns only after its "stopped" announce was answered.
	if sw := s2.Swarms(); len(sw) != 1 || sw[0].Peers != 1 {
		t.Errorf("after A stopped, swarms = %+v, want only B", sw)
	}
}

func drain(ch chan discovery.AnnounceRequest) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// waitAnnounce waits for an announce from peer with event ev. The bound is a
// hang guard, not a timing assertion.
func waitAnnounce(t *testing.T, seen <-chan discovery.AnnounceRequest, peer string, ev discovery.Event) {
	t.Helper()
	guard := time.After(10 * time.Second)
	for {
		select {
		case r := <-seen:
			if r.Peer == peer && r.Event == ev {
				return
			}
		case <-guard:
			t.Fatalf("no announce from %s with event %q", peer, ev)
		}
	}
}

func waitFound(t *testing.T, found <-chan []discovery.PeerInfo) []discovery.PeerInfo {
	t.Helper()
	select {
	case ps := <-found:
		return ps
	case <-time.After(10 * time.Second): // hang guard, not a timing assertion
		t.Fatal("Announcer reported no peers")
		return nil
	}
}
