package tracker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/discovery"
)

func TestAnnounceReturnsOthersNotSelf(t *testing.T) {
	s, _ := newTestServer(t, 1)
	if r := announce(t, s, req("c", "a", "eu", 10)); len(r.Peers) != 0 {
		t.Fatalf("first peer got %v, want nobody", peerIDs(r.Peers))
	}
	announce(t, s, req("c", "b", "eu", 0))
	announce(t, s, req("other", "x", "eu", 0)) // another swarm: never listed
	r := announce(t, s, req("c", "a", "eu", 10))
	if got := peerIDs(r.Peers); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("a got %v, want [b]", got)
	}
	if !r.Peers[0].Seed || r.Peers[0].Region != "eu" || len(r.Peers[0].Addrs) != 1 {
		t.Errorf("peer info %+v", r.Peers[0])
	}
	if r.IntervalS < 9 || r.IntervalS > 11 {
		t.Errorf("interval %v s, want 10 s ±10%%", r.IntervalS)
	}
	if r.MinIntervalS != 5 {
		t.Errorf("min interval %v, want 5", r.MinIntervalS)
	}
}

func TestSameRegionFirst(t *testing.T) {
	s, _ := newTestServer(t, 2)
	for i := range 6 {
		announce(t, s, req("c", fmt.Sprintf("eu%d", i), "eu", 1))
		announce(t, s, req("c", fmt.Sprintf("us%d", i), "us", 1))
	}
	r := req("c", "eu0", "eu", 1)
	r.NumWant = 8
	got := peerIDs(announce(t, s, r).Peers)
	if len(got) != 8 {
		t.Fatalf("got %d peers, want 8: %v", len(got), got)
	}
	for i, p := range got {
		if wantEU := i < 5; strings.HasPrefix(p, "eu") != wantEU || p == "eu0" {
			t.Fatalf("order %v: want the 5 other eu peers first, then us, never self", got)
		}
	}
}

func TestNumWantRespectedAndCapped(t *testing.T) {
	s, _ := newTestServer(t, 3)
	s.cfg.MaxPeers = 20
	for i := range 40 {
		announce(t, s, req("c", fmt.Sprintf("p%d", i), "", 1))
	}
	for _, c := range []struct{ numwant, want int }{{0, 20}, {3, 3}, {20, 20}, {500, 20}} {
		r := req("c", "p0", "", 1)
		r.NumWant = c.numwant
		if got := announce(t, s, r).Peers; len(got) != c.want {
			t.Errorf("numwant %d: got %d peers, want %d", c.numwant, len(got), c.want)
		}
	}
}

func TestRandomSubsetIsSeededAndVaries(t *testing.T) {
	run := func(seed uint64) [][]string {
		s, _ := newTestServer(t, seed)
		for i := range 200 {
			announce(t, s, req("c", fmt.Sprintf("p%d", i), []string{"eu", "us"}[i%2], 1))
		}
		var out [][]string
		for i := range 5 {
			r := req("c", fmt.Sprintf("p%d", i), []string{"eu", "us"}[i%2], 1)
			r.NumWant = 10
			out = append(out, peerIDs(announce(t, s, r).Peers))
		}
		return out
	}
	a, b := run(7), run(7)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("same seed, different subsets: %v vs %v", a[i], b[i])
		}
	}
	union := map[string]bool{}
	for _, ids := range a {
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("duplicate peer %s in %v", id, ids)
			}
			seen[id] = true
			union[id] = true
		}
	}
	if len(union) <= 10 {
		t.Errorf("5 announces drew only %d distinct peers out of 200: subset not random", len(union))
	}
	if c := run(8); slices.Equal(c[0], a[0]) && slices.Equal(c[1], a[1]) {
		t.Errorf("different seeds gave identical subsets %v", c[0])
	}
}

func TestPeersExpireOnClock(t *testing.T) {
	s, clk := newTestServer(t, 4) // interval 10 s, TTL 30 s
	announce(t, s, req("c", "a", "", 1))
	announce(t, s, req("c", "b", "", 1))
	clk.Advance(20 * time.Second)
	if got := peerIDs(announce(t, s, req("c", "a", "", 1)).Peers); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("b should still be listed at 20 s, got %v", got)
	}
	clk.Advance(11 * time.Second) // b silent for 31 s, a for 11 s
	if got := peerIDs(announce(t, s, req("c", "c", "", 1)).Peers); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("after b's TTL, c got %v, want [a]", got)
	}
	clk.Advance(31 * time.Second)
	s.Sweep()
	if sw := s.Swarms(); len(sw) != 0 {
		t.Fatalf("after everyone's TTL, swarms = %+v", sw)
	}
	if m := metricLabel(t, s, "shoal_tracker_expired_peers_total"); m != 3 {
		t.Errorf("expired counter %v, want 3", m)
	}
}

func TestStoppedRemovesPeer(t *testing.T) {
	s, _ := newTestServer(t, 5)
	announce(t, s, req("c", "a", "", 1))
	announce(t, s, req("c", "b", "", 1))
	stop := req("c", "a", "", 1)
	stop.Event = discovery.EventStopped
	if r := announce(t, s, stop); len(r.Peers) != 0 {
		t.Errorf("stopped announce got peers %v", peerIDs(r.Peers))
	}
	if got := peerIDs(announce(t, s, req("c", "b", "", 1)).Peers); len(got) != 0 {
		t.Fatalf("b still sees %v after a stopped", got)
	}
	announce(t, s, stop) // stopping an unknown peer is harmless
	stop.Peer = "b"
	announce(t, s, stop)
	if sw := s.Swarms(); len(sw) != 0 {
		t.Fatalf("empty swarm kept: %+v", sw)
	}
}

func TestRegionChangeMovesPeer(t *testing.T) {
	s, _ := newTestServer(t, 6)
	announce(t, s, req("c", "a", "eu", 1))
	announce(t, s, req("c", "b", "us", 1))
	announce(t, s, req("c", "c", "us", 1))
	announce(t, s, req("c", "a", "us", 1)) // a moved
	r := req("c", "b", "us", 1)
	r.NumWant = 1
	for range 10 {
		if got := announce(t, s, r).Peers; len(got) != 1 || got[0].Region != "us" {
			t.Fatalf("b asked for 1 same-region peer, got %+v", got)
		}
	}
}

func TestValidationRejects(t *testing.T) {
	s, _ := newTestServer(t, 7)
	cid := content("c").String()
	addrs := make([]string, discovery.MaxAddrs+1)
	for i := range addrs {
		addrs[i] = `"/ip4/127.0.0.1/tcp/1"`
	}
	cases := []struct{ name, body, field string }{
		{"bad json", `{"content":`, "body"},
		{"too large", `{"content":"` + cid + `","peer":"a","pad":"` + strings.Repeat("x", discovery.MaxBodyBytes) + `"}`, "body"},
		{"bad content", `{"content":"zzz","peer":"a"}`, "content"},
		{"missing content", `{"peer":"a"}`, "content"},
		{"empty peer", `{"content":"` + cid + `","peer":""}`, "peer"},
		{"oversized peer", `{"content":"` + cid + `","peer":"` + strings.Repeat("p", 200) + `"}`, "peer"},
		{"too many addrs", `{"content":"` + cid + `","peer":"a","addrs":[` + strings.Join(addrs, ",") + `]}`, "addrs"},
		{"oversized addr", `{"content":"` + cid + `","peer":"a","addrs":["/dns4/` + strings.Repeat("h", 300) + `/tcp/1"]}`, "addrs"},
		{"bad addr", `{"content":"` + cid + `","peer":"a","addrs":["localhost:1"]}`, "addrs"},
		{"negative uploaded", `{"content":"` + cid + `","peer":"a","uploaded":-1}`, "uploaded"},
		{"negative downloaded", `{"content":"` + cid + `","peer":"a","downloaded":-1}`, "downloaded"},
		{"negative left", `{"content":"` + cid + `","peer":"a","left":-1}`, "left"},
		{"unknown event", `{"content":"` + cid + `","peer":"a","event":"paused"}`, "event"},
		{"bad region", `{"content":"` + cid + `","peer":"a","region":"a b"}`, "region"},
		{"negative numwant", `{"content":"` + cid + `","peer":"a","numwant":-2}`, "numwant"},
		{"wrong type", `{"content":"` + cid + `","peer":"a","left":"lots"}`, "left"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := post(t, s, []byte(c.body))
			if code != http.StatusBadRequest {
				t.Fatalf("HTTP %d, want 400: %s", code, body)
			}
			var e struct{ Error, Field string }
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("error body %q: %v", body, err)
			}
			if e.Field != c.field || !strings.HasPrefix(e.Error, c.field+":") {
				t.Fatalf("error %+v, want it to name %q", e, c.field)
			}
		})
	}
	if got := metricLabel(t, s, `shoal_tracker_announces_total{result="invalid"}`); got != float64(len(cases)) {
		t.Errorf("invalid announces counted %v, want %d", got, len(cases))
	}
	if sw := s.Swarms(); len(sw) != 0 {
		t.Errorf("rejected announces created swarms: %+v", sw)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/announce", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /announce = %d, want 405", rec.Code)
	}
}

func TestSwarmsCounts(t *testing.T) {
	s, _ := newTestServer(t, 8)
	a := req("big", "a", "", 0)
	a.Uploaded = 100
	announce(t, s, a)
	b := req("big", "b", "", 50)
	b.Downloaded = 30
	announce(t, s, b)
	announce(t, s, req("big", "c", "", 50))
	announce(t, s, req("small", "a", "", 0))
	a.Uploaded = 150 // +50
	announce(t, s, a)
	b.Downloaded, b.Left, b.Event = 80, 0, discovery.EventCompleted // +50, now a seed
	announce(t, s, b)
	b.Event = discovery.EventStopped
	announce(t, s, b) // leaves; its bytes stay counted

	var got SwarmsResponse
	if err := json.Unmarshal(get(t, s, "/api/swarms"), &got); err != nil {
		t.Fatal(err)
	}
	want := []SwarmStats{
		{Content: content("big"), Peers: 2, Seeds: 1, Leechers: 1, Completed: 1, Uploaded: 150, Downloaded: 80},
		{Content: content("small"), Peers: 1, Seeds: 1, Leechers: 0},
	}
	if !slices.Equal(got.Swarms, want) {
		t.Fatalf("swarms\n got %+v\nwant %+v", got.Swarms, want)
	}
}

func TestMetricsMove(t *testing.T) {
	s, _ := newTestServer(t, 9)
	announce(t, s, req("c1", "a", "", 0))
	announce(t, s, req("c1", "b", "", 5))
	announce(t, s, req("c2", "a", "", 5))
	post(t, s, []byte(`{}`))
	for name, want := range map[string]float64{
		`shoal_tracker_announces_total{result="ok"}`:      3,
		`shoal_tracker_announces_total{result="invalid"}`: 1,
		"shoal_tracker_swarms":                            2,
		"shoal_tracker_peers":                             3,
		"shoal_tracker_seeds":                             1,
		"shoal_tracker_expired_peers_total":               0,
	} {
		if got := metricLabel(t, s, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// metricLabel scrapes /metrics and returns the sample named exactly series
// (name plus labels as Prometheus prints them).
func metricLabel(t *testing.T, s *Server, series string) float64 {
	t.Helper()
	for line := range strings.Lines(string(get(t, s, "/metrics"))) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not in /metrics", series)
	return 0
}
