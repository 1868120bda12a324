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
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/shoal-cdn/shoal/discovery"
)

// TestOverloadRefusesAtOnceWithRetryAfter: with every slot taken, one more
// announce is refused with 503, a Retry-After header and interval_s in the
// body, without waiting for the slot's holder; once it lets go, announces
// are served again.
func TestOverloadRefusesAtOnceWithRetryAfter(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	s, _ := newTestServer(t, 1)
	s = New(func() Config {
		c := s.cfg
		c.MaxInFlight, c.QueueWait, c.OverloadRetryAfter = 1, time.Millisecond, 10*time.Second
		c.Authorize = func(ctx context.Context, r AuthRequest) (Grant, error) {
			if calls.Add(1) == 1 {
				close(entered)
				<-release
			}
			return Grant{}, nil
		}
		return c
	}())
	body, _ := json.Marshal(req("c", "holder", "r", 1))
	held := make(chan int, 1)
	go func() { code, _ := post(t, s, body); held <- code }()
	<-entered

	body2, _ := json.Marshal(req("c", "second", "r", 1))
	rec := postRec(s, "127.0.0.1:40001", body2)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("announce with the only slot taken: HTTP %d: %s, want 503", rec.Code, rec.Body)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "10" && ra != "11" && ra != "12" && ra != "13" && ra != "14" && ra != "15" {
		t.Errorf("Retry-After %q, want 10–15 (10 s + up to 50%% jitter)", ra)
	}
	var eb errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.IntervalS < 10 || eb.IntervalS > 15 || eb.Error == "" {
		t.Errorf("body %s (%v): want an error and interval_s in [10, 15]", rec.Body, err)
	}
	if calls.Load() != 1 {
		t.Errorf("the refused announce reached Authorize (%d calls): an overload refusal must cost nothing", calls.Load())
	}
	close(release)
	if code := <-held; code != http.StatusOK {
		t.Fatalf("the slot holder got HTTP %d", code)
	}
	if rec := postRec(s, "127.0.0.1:40001", body2); rec.Code != http.StatusOK {
		t.Fatalf("after the overload: HTTP %d: %s", rec.Code, rec.Body)
	}
	if got := counterValue(t, s, resultOverloaded); got != 1 {
		t.Errorf("shoal_tracker_announces_total{result=overloaded} = %v, want 1", got)
	}
}

// TestRateLimitRefusalSaysWhenToRetry: a 429 carries Retry-After and the
// same in interval_s, which the peer's client turns into a wait.
func TestRateLimitRefusalSaysWhenToRetry(t *testing.T) {
	s, _, _ := newStrictServer(t, func(c *Config) { c.AllowUnsigned, c.RatePerIP, c.BurstPerIP = true, 1, 1 })
	body, _ := json.Marshal(req("c", "p", "r", 1))
	postRec(s, "198.18.0.9:1", body)
	rec := postRec(s, "198.18.0.9:1", body)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "5" {
		t.Fatalf("HTTP %d, Retry-After %q: want 429 and 5 (MinInterval)", rec.Code, rec.Header().Get("Retry-After"))
	}
	var eb errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.IntervalS != 5 {
		t.Fatalf("body %s: want interval_s 5", rec.Body)
	}
}

// TestFloodGetsFastRefusalsAndRecovers floods a real tracker on loopback
// for 10 s with far more concurrent announces than it is configured to
// take (64 senders against 2 slots whose announces each cost 5 ms: about
// 400/s sustainable, so the offered load is some 10× that), from 1,000
// peers over many addresses and one hot address. It asserts behaviour, not
// speed: every request is answered (200, 503 or 429, never a hang to the
// client's 20 s timeout or a broken connection), each refusal carries
// Retry-After, the tracker's memory stays bounded, its goroutines return
// to what they were, and a normal announce is served right after.
func TestFloodGetsFastRefusalsAndRecovers(t *testing.T) {
	s, _ := newTestServer(t, 1)
	cfg := s.cfg
	cfg.MaxInFlight, cfg.QueueWait, cfg.OverloadRetryAfter = 2, 20*time.Millisecond, 2*time.Second
	cfg.TrustForwarded = true
	cfg.RatePerIP, cfg.BurstPerIP, cfg.RatePerPrefix, cfg.BurstPerPrefix = 1, 1, 1000, 1000
	cfg.MaxPeersTotal = 2000
	cfg.Authorize = func(ctx context.Context, r AuthRequest) (Grant, error) {
		time.Sleep(5 * time.Millisecond) // the cost of an announce, scaled up
		return Grant{}, nil
	}
	s = New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	url := "http://" + ln.Addr().String() + discovery.AnnouncePath
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()

	bodies := make([][]byte, 1000)
	for i := range bodies {
		r := req(fmt.Sprintf("c%d", i%10), fmt.Sprintf("flood%04d", i), "r", int64(i%2))
		r.Addrs = []string{fmt.Sprintf("/memory/%d", i)} // handed out whatever the sender's address
		bodies[i], _ = json.Marshal(r)
	}
	heapBefore, goroutinesBefore := heapInUse(), runtime.NumGoroutine()

	var (
		mu       sync.Mutex // guards counts and fails
		counts   = map[int]int{}
		fails    []string
		noRetry  int
		deadline = time.Now().Add(10 * time.Second)
		wg       sync.WaitGroup
	)
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i += 64 {
				xff := fmt.Sprintf("198.18.%d.%d", i%256, 1+(i/256)%250) // a fresh address per request
				if w == 0 {
					xff = "198.19.0.1" // one hot address: the per-IP limit refuses it
				}
				hr, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i%len(bodies)]))
				hr.Header.Set("X-Forwarded-For", xff)
				resp, err := hc.Do(hr)
				mu.Lock()
				if err != nil {
					fails = append(fails, err.Error())
					mu.Unlock()
					continue
				}
				counts[resp.StatusCode]++
				if resp.StatusCode != http.StatusOK && resp.Header.Get("Retry-After") == "" {
					noRetry++
				}
				mu.Unlock()
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	t.Logf("flood answers by status: %v; transport failures: %d", counts, len(fails))
	if len(fails) > 0 {
		t.Fatalf("%d requests not answered, first: %s", len(fails), fails[0])
	}
	for code := range counts {
		if code != http.StatusOK && code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests {
			t.Errorf("%d answers with HTTP %d: want only 200, 503 and 429", counts[code], code)
		}
	}
	if counts[http.StatusServiceUnavailable] == 0 || counts[http.StatusTooManyRequests] == 0 || counts[http.StatusOK] == 0 {
		t.Errorf("want some of each of 200, 503 (overload) and 429 (hot address), got %v", counts)
	}
	if noRetry > 0 {
		t.Errorf("%d refusals without Retry-After", noRetry)
	}
	if grew := int64(heapInUse()) - int64(heapBefore); grew > 64<<20 {
		t.Errorf("heap grew by %d MiB over the flood, want it bounded (< 64 MiB)", grew>>20)
	}

	// Right after: two normal peers of a new swarm, from quiet addresses,
	// are served, and the second learns the first.
	hc.CloseIdleConnections()
	var ar discovery.AnnounceResponse
	for i, name := range []string{"after1", "after2"} {
		r := req("after", name, "r", 1)
		r.Addrs = []string{fmt.Sprintf("/memory/%d", 99990+i)}
		b, _ := json.Marshal(r)
		hr, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
		hr.Header.Set("X-Forwarded-For", fmt.Sprintf("198.19.255.%d", 240+i))
		resp, err := hc.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		ar = discovery.AnnounceResponse{}
		err = json.NewDecoder(resp.Body).Decode(&ar)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("announce of %s after the flood: HTTP %d, %v", name, resp.StatusCode, err)
		}
	}
	if len(ar.Peers) != 1 || ar.Peers[0].Peer != "after1" {
		t.Fatalf("second peer after the flood got %+v, want after1", ar.Peers)
	}
	// The flood's goroutines are gone (polled: connections close
	// asynchronously), with a generous allowance for the runtime's own.
	for end := time.Now().Add(20 * time.Second); runtime.NumGoroutine() > goroutinesBefore+20; {
		if time.Now().After(end) {
			t.Fatalf("%d goroutines after the flood, %d before", runtime.NumGoroutine(), goroutinesBefore)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// postRec is postFrom returning the whole recorded response, headers too.
func postRec(s *Server, remote string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	hr := httptest.NewRequest(http.MethodPost, discovery.AnnouncePath, bytes.NewReader(body))
	hr.RemoteAddr = remote
	s.Handler().ServeHTTP(rec, hr)
	return rec
}

func counterValue(t *testing.T, s *Server, result string) float64 {
	t.Helper()
	var m dto.Metric
	if err := s.m.announces.WithLabelValues(result).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
