package tracker

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/control"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/internal/redistest"
	"github.com/shoal-cdn/shoal/manifest"
)

// operatorKey returns the operator key derived from seed.
func operatorKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return ed25519.NewKeyFromSeed(s)
}

// signedPolicy is a policy with serial turning P2P off in region, signed
// by priv and encoded.
func signedPolicy(t testing.TB, priv ed25519.PrivateKey, serial uint64, region string) []byte {
	t.Helper()
	p := control.Policy{Serial: serial, Issued: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		Rules: []control.Rule{{Match: control.Match{Region: region}, P2P: control.Off}}}
	if err := p.Sign(priv); err != nil {
		t.Fatal(err)
	}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withOperator is a storeCase mod: the tracker trusts operatorKey(1).
func withOperator(c *Config) {
	c.OperatorKeys = []manifest.PublicKey{manifest.PublicOf(operatorKey(1))}
}

// putPolicy sends doc to PUT /api/policy with the admin token tok ("":
// none) and returns the status and body.
func putPolicy(t testing.TB, h http.Handler, tok string, doc []byte) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPut, PolicyAPIPath, bytes.NewReader(doc))
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	h.ServeHTTP(rec, r)
	return rec.Code, rec.Body.String()
}

// getPolicy sends GET path (/policy, perhaps with ?after=) and returns the
// recorded answer.
func getPolicy(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	h.ServeHTTP(rec, r)
	return rec
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// policyCases run in TestStoreBehaviours, against memory and Redis.
var policyCases = []storeCase{
	{name: "PolicyPutChecked", mod: withOperator, run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		h := s.Handler()
		if rec := getPolicy(h, "/policy"); rec.Code != http.StatusNotFound {
			t.Fatalf("GET /policy before any: HTTP %d, want 404", rec.Code)
		}
		doc := signedPolicy(t, operatorKey(1), 2, "eu")
		if code, body := putPolicy(t, h, "", doc); code != http.StatusUnauthorized {
			t.Fatalf("no admin token: HTTP %d %s, want 401", code, body)
		}
		if code, body := putPolicy(t, h, "wrong", doc); code != http.StatusUnauthorized {
			t.Fatalf("wrong admin token: HTTP %d %s, want 401", code, body)
		}
		tampered := bytes.Replace(doc, []byte(`"eu"`), []byte(`"us"`), 1)
		if code, body := putPolicy(t, h, testAdminToken, tampered); code != http.StatusBadRequest || !strings.Contains(body, "bad policy signature") {
			t.Fatalf("tampered: HTTP %d %s, want 400 bad signature", code, body)
		}
		if code, body := putPolicy(t, h, testAdminToken, signedPolicy(t, operatorKey(2), 5, "eu")); code != http.StatusBadRequest || !strings.Contains(body, "not signed by a trusted operator key") {
			t.Fatalf("another key: HTTP %d %s, want 400 untrusted", code, body)
		}
		if code, body := putPolicy(t, h, testAdminToken, append(doc, '\n')); code != http.StatusOK || !strings.Contains(body, `"serial":2`) {
			t.Fatalf("good policy (and a trailing newline): HTTP %d %s, want 200 serial 2", code, body)
		}
		for _, serial := range []uint64{1, 2} {
			if code, body := putPolicy(t, h, testAdminToken, signedPolicy(t, operatorKey(1), serial, "us")); code != http.StatusConflict || !strings.Contains(body, "current one is 2") {
				t.Fatalf("serial %d after 2: HTTP %d %s, want 409", serial, code, body)
			}
		}
		rec := getPolicy(h, "/policy")
		if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), doc) || rec.Header().Get("ETag") != `"2"` || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("GET /policy: HTTP %d %v %q, want the policy's bytes verbatim, ETag \"2\"", rec.Code, rec.Header(), rec.Body)
		}
		if !strings.Contains(string(get(t, s, "/metrics")), "shoal_tracker_policy_serial 2") {
			t.Fatal("metrics: no shoal_tracker_policy_serial 2")
		}
	}},
	{name: "AnnounceCarriesNewerPolicy", mod: withOperator, run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		if got := announce(t, s, req("c", "a", "", 1)).Policy; got != nil {
			t.Fatalf("no policy yet, the answer carries %s", got)
		}
		doc := signedPolicy(t, operatorKey(1), 3, "eu")
		if _, err := s.SetPolicy(context.Background(), doc); err != nil {
			t.Fatal(err)
		}
		for _, held := range []uint64{0, 1, 2} {
			r := req("c", "a", "", 1)
			r.PolicySerial = held
			if got := announce(t, s, r).Policy; !bytes.Equal(got, doc) {
				t.Fatalf("peer holding %d: policy %q, want policy 3 verbatim", held, got)
			}
		}
		for _, held := range []uint64{3, 4} {
			r := req("c", "a", "", 1)
			r.PolicySerial = held
			if got := announce(t, s, r).Policy; got != nil {
				t.Fatalf("peer holding %d: the answer carries %s, want none", held, got)
			}
		}
	}},
	{name: "PolicyLongPoll", mod: func(c *Config) { withOperator(c); c.PolicyWait = 300 * time.Millisecond }, run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		h := s.Handler()
		if rec := getPolicy(h, "/policy?after=0"); rec.Code != http.StatusNoContent {
			t.Fatalf("poll with no policy: HTTP %d, want 204 once the wait ends", rec.Code)
		}
		if rec := getPolicy(h, "/policy?after=x"); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "after") {
			t.Fatalf("after=x: HTTP %d %s, want 400 naming after", rec.Code, rec.Body)
		}
		// Three polls wait (the wait raised so none times out first); one
		// policy wakes them all.
		s.cfg.PolicyWait = time.Minute
		done := make(chan *httptest.ResponseRecorder, 3)
		for range 3 {
			go func() { done <- getPolicy(h, "/policy?after=0") }()
		}
		waitFor(t, "3 polls waiting", func() bool { return s.pol.waiters.Load() == 3 })
		doc := signedPolicy(t, operatorKey(1), 1, "eu")
		if _, err := s.SetPolicy(context.Background(), doc); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			rec := <-done
			if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), doc) {
				t.Fatalf("woken poll: HTTP %d %q, want the policy", rec.Code, rec.Body)
			}
		}
		if n := s.pol.waiters.Load(); n != 0 {
			t.Fatalf("%d waiters left, want 0", n)
		}
		if rec := getPolicy(h, "/policy?after=0"); rec.Code != http.StatusOK {
			t.Fatalf("poll from behind: HTTP %d, want the policy at once", rec.Code)
		}
		s.cfg.PolicyWait = 300 * time.Millisecond
		if rec := getPolicy(h, "/policy?after=1"); rec.Code != http.StatusNoContent {
			t.Fatalf("poll holding the current one: HTTP %d, want 204", rec.Code)
		}
	}},
	{name: "PolicyWaitersBounded", mod: func(c *Config) { withOperator(c); c.MaxPolicyWaiters = 2; c.PolicyWait = time.Minute }, run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		h := s.Handler()
		done := make(chan int, 2)
		for range 2 {
			go func() { done <- getPolicy(h, "/policy?after=0").Code }()
		}
		waitFor(t, "2 polls waiting", func() bool { return s.pol.waiters.Load() == 2 })
		rec := getPolicy(h, "/policy?after=0")
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("a third poll over --max-policy-waiters 2: HTTP %d %v, want 503 with Retry-After", rec.Code, rec.Header())
		}
		s.pol.stopWaiting() // as at shutdown: the held polls answer at once
		for range 2 {
			if code := <-done; code != http.StatusNoContent {
				t.Fatalf("held poll at shutdown: HTTP %d, want 204", code)
			}
		}
	}},
	{name: "NoOperatorKeyNoPolicy", run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		code, body := putPolicy(t, s.Handler(), testAdminToken, signedPolicy(t, operatorKey(1), 1, "eu"))
		if code != http.StatusNotFound || !strings.Contains(body, "--operator-key") {
			t.Fatalf("PUT without operator keys: HTTP %d %s, want 404 naming --operator-key", code, body)
		}
		if rec := getPolicy(s.Handler(), "/policy?after=0"); rec.Code != http.StatusNotFound {
			t.Fatalf("poll without operator keys: HTTP %d, want 404 at once", rec.Code)
		}
	}},
}

// TestPolicySharedByReplicas: a policy pushed to one replica reaches a
// long poll held on another, a replica opened later loads it at start, and
// an older one pushed to the second is refused.
func TestPolicySharedByReplicas(t *testing.T) {
	rds := redistest.Start(t)
	open := func() *Server {
		cfg := Config{Redis: rds.URL(), RedisPrefix: "t:replicas:", Logger: quiet, AllowUnsigned: true,
			AdminToken: testAdminToken, PolicyWait: 20 * time.Second}
		withOperator(&cfg)
		s, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- getPolicy(b.Handler(), "/policy?after=0") }()
	waitFor(t, "a poll waiting on b", func() bool { return b.pol.waiters.Load() == 1 })
	doc := signedPolicy(t, operatorKey(1), 4, "eu")
	if code, body := putPolicy(t, a.Handler(), testAdminToken, doc); code != http.StatusOK {
		t.Fatalf("push to a: HTTP %d %s", code, body)
	}
	if rec := <-done; rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), doc) {
		t.Fatalf("b's poll: HTTP %d %q, want a's policy", rec.Code, rec.Body)
	}
	if got := open().Policy(); !bytes.Equal(got, doc) {
		t.Fatalf("a replica opened later holds %q, want the policy", got)
	}
	if code, body := putPolicy(t, b.Handler(), testAdminToken, signedPolicy(t, operatorKey(1), 3, "us")); code != http.StatusConflict {
		t.Fatalf("an older one pushed to b: HTTP %d %s, want 409", code, body)
	}
}

// TestPolicyFileReloaded: --policy FILE is set at start and again when the
// file changes; a file that does not verify leaves the policy held.
func TestPolicyFileReloaded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.json")
	write := func(doc []byte) {
		if err := os.WriteFile(path+".tmp", append(doc, '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	first := signedPolicy(t, operatorKey(1), 1, "eu")
	write(first)
	cfg := Config{Logger: quiet, PolicyFile: path}
	withOperator(&cfg)
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !bytes.Equal(s.Policy(), first) {
		t.Fatalf("at start: %q, want the file's policy", s.Policy())
	}
	second := signedPolicy(t, operatorKey(1), 2, "region-two-longer") // a different size, whatever the clock's resolution
	write(second)
	waitFor(t, "the changed file's policy", func() bool { return bytes.Equal(s.Policy(), second) })

	cfg.PolicyFile = filepath.Join(t.TempDir(), "other.json")
	if err := os.WriteFile(cfg.PolicyFile, signedPolicy(t, operatorKey(2), 1, "eu"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), cfg.PolicyFile) {
		t.Fatalf("a file signed by another key: %v, want an error naming the file", err)
	}
}

// TestPolicyPollEndsAtShutdown: a long poll held when the tracker shuts
// down is answered (204) at once, so shutdown does not wait for it.
func TestPolicyPollEndsAtShutdown(t *testing.T) {
	cfg := Config{Logger: quiet, PolicyWait: discovery.PolicyWait}
	withOperator(&cfg)
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	polled := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/policy?after=0")
		if err != nil {
			polled <- -1
			return
		}
		resp.Body.Close()
		polled <- resp.StatusCode
	}()
	waitFor(t, "the poll held", func() bool { return s.pol.waiters.Load() == 1 })
	cancel()
	if code := <-polled; code != http.StatusNoContent {
		t.Fatalf("held poll at shutdown: %d, want 204", code)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v, want a clean shutdown", err)
	}
}

// TestPolicyPollsLimitedApart: policy polls are not counted against the
// announce rate limit, and have one of their own.
func TestPolicyPollsLimitedApart(t *testing.T) {
	cfg := Config{Logger: quiet, AllowUnsigned: true, RatePerIP: 0.001, BurstPerIP: 2, RatePerPrefix: -1}
	withOperator(&cfg)
	s := New(cfg)
	if _, err := s.SetPolicy(context.Background(), signedPolicy(t, operatorKey(1), 1, "eu")); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		announce(t, s, req("c", fmt.Sprint("p", i), "", 1))
	}
	b, _ := json.Marshal(req("c", "p9", "", 1))
	if code, _ := post(t, s, b); code != http.StatusTooManyRequests {
		t.Fatalf("third announce over a burst of 2: HTTP %d, want 429", code)
	}
	for i := range 2 {
		if rec := getPolicy(s.Handler(), "/policy?after=0"); rec.Code != http.StatusOK {
			t.Fatalf("poll %d with the announce limit spent: HTTP %d, want 200", i, rec.Code)
		}
	}
	if rec := getPolicy(s.Handler(), "/policy?after=0"); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("third poll over its own burst of 2: HTTP %d, want 429 with Retry-After", rec.Code)
	}
}

// TestPolicyPollsHeldPerAddress: one address holds at most
// MaxPolicyWaitersPerIP long polls at once (another is refused at once,
// naming the address), so it cannot take the fleet's places; another
// address still gets one, and a place freed is taken again.
func TestPolicyPollsHeldPerAddress(t *testing.T) {
	cfg := Config{Logger: quiet, AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1, PolicyWait: time.Minute}
	withOperator(&cfg)
	s := New(cfg)
	defer s.Close()
	h := s.Handler()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	poll := func(ctx context.Context, addr string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/policy?after=0", nil)
		r.RemoteAddr = addr
		h.ServeHTTP(rec, r)
		return rec
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range MaxPolicyWaitersPerIP {
		wg.Add(1)
		go func() { defer wg.Done(); poll(ctx, "198.18.0.1:1000") }()
	}
	waitFor(t, "the address's polls held", func() bool { return s.pol.waiters.Load() == MaxPolicyWaitersPerIP })
	rec := poll(context.Background(), "198.18.0.1:1001")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "this address") {
		t.Fatalf("poll %d from one address: HTTP %d %q, want 503 with Retry-After naming the address", MaxPolicyWaitersPerIP+1, rec.Code, rec.Body.String())
	}
	// Another address is not crowded out.
	octx, ocancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- poll(octx, "198.18.1.1:1000").Code }()
	waitFor(t, "another address's poll held", func() bool { return s.pol.waiters.Load() == MaxPolicyWaitersPerIP+1 })
	ocancel()
	<-done
	waitFor(t, "the other address's poll let go", func() bool { return s.pol.waiters.Load() == MaxPolicyWaitersPerIP })
}

// TestPolicyTakenWhileRedisDown: a kill switch pushed while Redis is down
// is obeyed by the replica it reached at once, and shared with the others
// once Redis is back.
func TestPolicyTakenWhileRedisDown(t *testing.T) {
	rds := redistest.Start(t)
	open := func() *Server {
		cfg := Config{Redis: rds.URL(), RedisPrefix: "t:down:", Logger: quiet, AllowUnsigned: true, AdminToken: testAdminToken}
		withOperator(&cfg)
		s, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := open()
	rds.Kill()
	doc := signedPolicy(t, operatorKey(1), 5, "eu")
	if code, body := putPolicy(t, a.Handler(), testAdminToken, doc); code != http.StatusOK {
		t.Fatalf("push with Redis down: HTTP %d %s, want 200 (taken here)", code, body)
	}
	if !bytes.Equal(a.Policy(), doc) {
		t.Fatal("the replica does not hold the policy pushed while Redis was down")
	}
	rds.Restart(t)
	b := open()
	waitFor(t, "the policy shared through Redis once it is back", func() bool { return bytes.Equal(b.Policy(), doc) })
}

// TestPushedPolicyKeptInPolicyFile: a policy pushed to a tracker started
// with --policy FILE (no Redis) is written over the file, so the tracker
// restarted serves it, not the file's older one.
func TestPushedPolicyKeptInPolicyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(path, signedPolicy(t, operatorKey(1), 1, "eu"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Logger: quiet, PolicyFile: path, AdminToken: testAdminToken}
	withOperator(&cfg)
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	pushed := signedPolicy(t, operatorKey(1), 2, "us")
	if code, body := putPolicy(t, s.Handler(), testAdminToken, pushed); code != http.StatusOK {
		t.Fatalf("push: HTTP %d %s", code, body)
	}
	s.Close()
	again, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if !bytes.Equal(again.Policy(), pushed) {
		t.Fatalf("restarted: serves %q, want the pushed policy", again.Policy())
	}
}
