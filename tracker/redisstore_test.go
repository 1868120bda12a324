package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/internal/redistest"
)

func TestRedisURLForms(t *testing.T) {
	for _, tc := range []struct {
		url      string
		addrs    []string
		cluster  bool
		master   string
		db       int
		password string
		tls      bool
	}{
		{url: "redis://127.0.0.1:6379", addrs: []string{"127.0.0.1:6379"}},
		{url: "redis://:secret@10.0.0.1:6380/2", addrs: []string{"10.0.0.1:6380"}, db: 2, password: "secret"},
		{url: "rediss://cache.example:6380", addrs: []string{"cache.example:6380"}, tls: true},
		{url: "redis://s1:26379?master_name=main&addr=s2:26379", addrs: []string{"s1:26379", "s2:26379"}, master: "main"},
		{url: "redis+cluster://n1:7000", addrs: []string{"n1:7000"}, cluster: true},
		{url: "redis://n1:7000?addr=n2:7000&addr=n3:7000", addrs: []string{"n1:7000", "n2:7000", "n3:7000"}, cluster: true},
	} {
		o, err := redisOptions(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if !slices.Equal(o.Addrs, tc.addrs) || o.IsClusterMode != tc.cluster || o.MasterName != tc.master ||
			o.DB != tc.db || o.Password != tc.password || (o.TLSConfig != nil) != tc.tls {
			t.Errorf("%s: got addrs %v cluster %v master %q db %d password %q tls %v", tc.url,
				o.Addrs, o.IsClusterMode, o.MasterName, o.DB, o.Password, o.TLSConfig != nil)
		}
	}
	for _, bad := range []string{"http://h:1", "redis://h:1?bogus=1", "redis+cluster://h:1?master_name=x", "::"} {
		if _, err := redisOptions(bad); !errors.Is(err, ErrBadRedisURL) {
			t.Errorf("%q: got %v, want ErrBadRedisURL", bad, err)
		}
	}
	if _, err := redisOptions("redis://:hunter2@h:1?bogus=1"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v: want one without the password", err)
	}
}

// postRec posts an announce from loopback and returns the whole recording.
// redisReplicas returns n trackers on one Redis, sharing a manual clock.
func redisReplicas(t *testing.T, url string, n int) ([]*Server, *core.ManualClock) {
	t.Helper()
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	out := make([]*Server, n)
	for i := range out {
		s, err := Open(context.Background(), Config{Interval: 10 * time.Second, MaxPeers: 50, Clock: clk,
			Rand: rand.New(rand.NewPCG(uint64(i), 1)), Logger: quiet, AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1,
			AdminToken: testAdminToken, Redis: url, RedisPrefix: "t:" + t.Name() + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out, clk
}

// TestRedisReplicasShareSwarms: what one replica records, another serves:
// peers, seeds, the listing, and a stop.
func TestRedisReplicasShareSwarms(t *testing.T) {
	rds := redistest.Start(t)
	rs, clk := redisReplicas(t, rds.URL(), 2)
	a, b := rs[0], rs[1]
	announce(t, a, req("c", "p1", "", 0))
	announce(t, a, req("c", "p2", "", 5))
	got := peerIDs(announce(t, b, req("c", "p3", "", 5)).Peers)
	slices.Sort(got)
	if !slices.Equal(got, []string{"p1", "p2"}) {
		t.Fatalf("replica b gave p3 %v, want the peers replica a recorded, [p1 p2]", got)
	}
	if st := swarmOf(a, "c"); st.Peers != 3 || st.Seeds != 1 {
		t.Fatalf("replica a lists %+v, want 3 peers, 1 seed", st)
	}
	stop := req("c", "p1", "", 0)
	stop.Event = "stopped"
	announce(t, b, stop)
	clk.Advance(DefaultRedisSampleReuse) // a's sample of the swarm may be that stale
	if got := peerIDs(announce(t, a, req("c", "p2", "", 5)).Peers); !slices.Equal(got, []string{"p3"}) {
		t.Fatalf("after p1 stopped on b, a gave %v, want [p3]", got)
	}
}

// TestRedisSampleReuse: a replica reuses what it last read from a swarm
// for the swarm's announces within RedisSampleReuse, so a peer that joined
// through another replica shows up a moment later, not at once; a peer
// joining through this replica is added to the kept entries at once, and
// the window passing makes it read again.
func TestRedisSampleReuse(t *testing.T) {
	rds := redistest.Start(t)
	rs, clk := redisReplicas(t, rds.URL(), 2)
	a, b := rs[0], rs[1]
	announce(t, a, req("c", "p1", "", 0))
	announce(t, a, req("c", "p2", "", 5)) // a join: a's next announce reads again
	if got := peerIDs(announce(t, a, req("c", "p2", "", 5)).Peers); !slices.Equal(got, []string{"p1"}) {
		t.Fatalf("p2 re-announcing got %v, want [p1]", got)
	}
	announce(t, b, req("c", "p3", "", 5))
	if got := peerIDs(announce(t, a, req("c", "p2", "", 5)).Peers); !slices.Equal(got, []string{"p1"}) {
		t.Fatalf("within the reuse window a gave %v, want its last read, [p1]", got)
	}
	clk.Advance(DefaultRedisSampleReuse)
	got := peerIDs(announce(t, a, req("c", "p2", "", 5)).Peers)
	slices.Sort(got)
	if !slices.Equal(got, []string{"p1", "p3"}) {
		t.Fatalf("after the reuse window a gave %v, want [p1 p3]", got)
	}
	announce(t, a, req("c", "p4", "", 5)) // joins through a: in a's kept entries at once
	got = peerIDs(announce(t, a, req("c", "p2", "", 5)).Peers)
	slices.Sort(got)
	if !slices.Equal(got, []string{"p1", "p3", "p4"}) {
		t.Fatalf("after p4 joined through a, a gave %v, want [p1 p3 p4]", got)
	}
}

// TestRedisDownAnswers503: with its Redis gone a replica refuses announces
// at once with a retry-after (peers move to another tracker or come back
// later), and the listing says why.
func TestRedisDownAnswers503(t *testing.T) {
	rds := redistest.Start(t)
	rs, _ := redisReplicas(t, rds.URL(), 1)
	s := rs[0]
	announce(t, s, req("c", "p1", "", 0))
	ready := func() int {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if code := ready(); code != http.StatusOK {
		t.Fatalf("/readyz with Redis up: %d, want 200", code)
	}
	rds.Kill()
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down: %d, want 503", code)
	}
	b, _ := json.Marshal(req("c", "p2", "", 0))
	rec := postRec(s, "127.0.0.1:40000", b)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("announce with Redis down: HTTP %d, Retry-After %q: %s; want 503 with a Retry-After", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, "tracker store unavailable") {
		t.Fatalf("error body %q: want it to say the store is unavailable", rec.Body)
	}
}

// TestRedisSweepForgetsSilentSwarms: a swarm nobody announced to for a
// TTL is trimmed by the sweep, unlisted and its keys deleted, without any
// announce to it: nothing of it is left in Redis but the stopped set.
func TestRedisSweepForgetsSilentSwarms(t *testing.T) {
	rds := redistest.Start(t)
	rs, clk := redisReplicas(t, rds.URL(), 1)
	s := rs[0]
	announce(t, s, req("c", "p1", "", 0))
	announce(t, s, req("c", "p2", "", 3))
	st := s.store.(*redisStore)
	ctx := context.Background()
	keys := st.swarmKeys(member(swarmKey{content: content("c")}))
	if n := st.c.Exists(ctx, keys[0], keys[2]).Val(); n != 2 {
		t.Fatalf("%d of the swarm's peer and entry keys exist, want 2", n)
	}
	clk.Advance(31 * time.Second)
	s.Sweep()
	if n := st.c.Exists(ctx, keys[:4]...).Val(); n != 0 {
		t.Fatalf("%d of the swarm's keys left after the sweep, want 0", n)
	}
	if n := st.c.ZCard(ctx, st.ns+"swarms").Val(); n != 0 {
		t.Fatalf("%d swarms indexed after the sweep, want 0", n)
	}
}
