package tracker

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/internal/redistest"
)

// storeCase is one behaviour every peer store must have. The Server it
// gets announces unsigned, has no rate limits, a 10 s interval (peer TTL
// 30 s) and the clock clk; mod adjusts that config first.
type storeCase struct {
	name string
	mod  func(*Config)
	run  func(t *testing.T, s *Server, clk *core.ManualClock)
}

// TestStoreBehaviours runs one table of behaviours against the memory
// store and against a real Redis (one redis-server, a key prefix per case).
func TestStoreBehaviours(t *testing.T) {
	rds := redistest.Start(t)
	backends := []struct {
		name string
		open func(t *testing.T, cfg Config) *Server
	}{
		{"memory", func(_ *testing.T, cfg Config) *Server { return New(cfg) }},
		{"redis", func(t *testing.T, cfg Config) *Server {
			cfg.Redis, cfg.RedisPrefix = rds.URL(), "t:"+t.Name()+":"
			s, err := Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range slices.Concat(storeCases, policyCases) {
				t.Run(c.name, func(t *testing.T) {
					clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
					cfg := Config{Interval: 10 * time.Second, MaxPeers: 50, Clock: clk, Rand: rand.New(rand.NewPCG(1, 2)),
						Logger: quiet, AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1, AdminToken: testAdminToken}
					if c.mod != nil {
						c.mod(&cfg)
					}
					c.run(t, b.open(t, cfg), clk)
				})
			}
		})
	}
}

// swarmOf returns the listed stats of content c in tenant "", or zero.
func swarmOf(s *Server, c string) SwarmStats {
	for _, st := range s.Swarms() {
		if st.Content == content(c) && st.Tenant == "" {
			return st
		}
	}
	return SwarmStats{}
}

// from is an announce of c by peer id listening on ip, to send from ip.
func from(c, id, ip, region string, left int64) (discovery.AnnounceRequest, string) {
	r := at(c, ip, 4001)
	r.Peer, r.Region, r.Left = id, region, left
	return r, ip + ":4001"
}

var storeCases = []storeCase{
	{name: "AnnounceUpserts", run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		announce(t, s, req("c", "a", "", 10))
		if got := peerIDs(announce(t, s, req("c", "b", "", 10)).Peers); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("b got %v, want [a]", got)
		}
		announce(t, s, req("c", "a", "", 0)) // again: one entry, now a seed
		if st := swarmOf(s, "c"); st.Peers != 2 || st.Seeds != 1 || st.Leechers != 1 {
			t.Fatalf("swarm %+v: want 2 peers, 1 seed, 1 leecher", st)
		}
		p, _ := find(announce(t, s, req("c", "b", "", 10)).Peers, "a")
		if !p.Seed || len(p.Addrs) != 1 {
			t.Fatalf("a as b sees it: %+v, want a seed with its address", p)
		}
	}},
	{name: "SampleExcludesSelf", run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		if got := announce(t, s, req("c", "a", "", 1)).Peers; len(got) != 0 {
			t.Fatalf("alone, a got %v", peerIDs(got))
		}
		for _, id := range []string{"b", "c", "d"} {
			announce(t, s, req("c", id, "", 1))
		}
		got := peerIDs(announce(t, s, req("c", "a", "", 1)).Peers)
		slices.Sort(got)
		if !slices.Equal(got, []string{"b", "c", "d"}) {
			t.Fatalf("a got %v, want [b c d]", got)
		}
	}},
	{name: "SilentPeersExpire", run: func(t *testing.T, s *Server, clk *core.ManualClock) {
		announce(t, s, req("c", "a", "", 1))
		clk.Advance(20 * time.Second)
		announce(t, s, req("c", "b", "", 1))
		clk.Advance(11 * time.Second) // a silent 31 s, past the 30 s TTL; b 11 s
		if got := peerIDs(announce(t, s, req("c", "c", "", 1)).Peers); !slices.Equal(got, []string{"b"}) {
			t.Fatalf("c got %v, want [b]: a expired", got)
		}
		if st := swarmOf(s, "c"); st.Peers != 2 {
			t.Fatalf("swarm %+v: want 2 peers", st)
		}
		clk.Advance(31 * time.Second)
		s.Sweep()
		if sw := s.Swarms(); len(sw) != 0 {
			t.Fatalf("after every TTL: %+v, want no swarm", sw)
		}
	}},
	{name: "StoppedRemoves", run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		announce(t, s, req("c", "a", "", 1))
		b := req("c", "b", "", 0)
		announce(t, s, b)
		b.Event = discovery.EventStopped
		if got := announce(t, s, b).Peers; len(got) != 0 {
			t.Fatalf("a stopped peer got %v", peerIDs(got))
		}
		if got := announce(t, s, req("c", "a", "", 1)).Peers; len(got) != 0 {
			t.Fatalf("a got %v after b stopped", peerIDs(got))
		}
		if st := swarmOf(s, "c"); st.Peers != 1 || st.Seeds != 0 {
			t.Fatalf("swarm %+v: want 1 peer, no seed", st)
		}
	}},
	{name: "CountersConsistent", run: func(t *testing.T, s *Server, clk *core.ManualClock) {
		a, b, c := req("x", "a", "", 100), req("x", "b", "", 0), req("x", "c", "", 50)
		a.Downloaded, b.Uploaded = 10, 40
		announce(t, s, a)
		announce(t, s, b)
		announce(t, s, c)
		a.Left, a.Downloaded, a.Event = 0, 110, discovery.EventCompleted // upgraded to seed
		announce(t, s, a)
		b.Left, b.Uploaded, b.Event = 7, 5, discovery.EventStarted // restarted: downgraded, counters reset
		announce(t, s, b)
		c.Event = discovery.EventStopped
		announce(t, s, c)
		want := SwarmStats{Content: content("x"), Peers: 2, Seeds: 1, Leechers: 1, Completed: 1, Uploaded: 45, Downloaded: 110}
		if st := swarmOf(s, "x"); st != want {
			t.Fatalf("swarm\n got %+v\nwant %+v", st, want)
		}
		clk.Advance(20 * time.Second)
		announce(t, s, req("x", "a", "", 0)) // b silent past the TTL below; a seed stays
		clk.Advance(15 * time.Second)
		announce(t, s, req("x", "d", "", 3))
		if st := swarmOf(s, "x"); st.Peers != 2 || st.Seeds != 1 || st.Leechers != 1 {
			t.Fatalf("after b expired: %+v, want a (seed) and d", st)
		}
	}},
	{name: "AtMostKPerPrefix", mod: func(c *Config) { c.MaxPerPrefix = 3 }, run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		for i := range 12 { // one /24 faking identities
			r, remote := from("c", fmt.Sprint("sybil", i), fmt.Sprintf("198.18.5.%d", i+1), "", 1)
			mustSend(t, s, remote, r)
		}
		for i := range 3 {
			r, remote := from("c", fmt.Sprint("honest", i), fmt.Sprintf("198.18.%d.1", 6+i), "", 1)
			mustSend(t, s, remote, r)
		}
		r, remote := from("c", "me", "198.18.9.1", "", 1)
		got := mustSend(t, s, remote, r).Peers
		sybils, honest := 0, 0
		for _, p := range got {
			switch {
			case strings.HasPrefix(p.Peer, "sybil"):
				sybils++
			case strings.HasPrefix(p.Peer, "honest"):
				honest++
			}
		}
		if sybils != 3 || honest != 3 {
			t.Fatalf("got %v: want 3 of the /24's 12 and the 3 others", peerIDs(got))
		}
	}},
	{name: "SameRegionFirst", mod: func(c *Config) { c.MaxPeers = 5 }, run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		for i := range 20 {
			announce(t, s, req("c", fmt.Sprint("far", i), "eu", 1))
		}
		for i := range 3 {
			announce(t, s, req("c", fmt.Sprint("near", i), "ap", 1))
		}
		got := announce(t, s, req("c", "me", "ap", 1)).Peers
		near := 0
		for _, p := range got {
			if strings.HasPrefix(p.Peer, "near") {
				near++
			}
		}
		if len(got) != 5 || near != 3 {
			t.Fatalf("got %v, want 5 peers with all 3 of region ap", peerIDs(got))
		}
	}},
	{name: "TenantsSeparate", mod: func(c *Config) { c.Authorize = tokenAuth(nil) }, run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		a, b, a2 := req("c", "a", "", 1), req("c", "b", "", 1), req("c", "a2", "", 1)
		a.Token, b.Token, a2.Token = "acme/", "globex/", "acme/"
		announce(t, s, a)
		if got := announce(t, s, b).Peers; len(got) != 0 {
			t.Fatalf("globex's peer got %v", peerIDs(got))
		}
		if got := peerIDs(announce(t, s, a2).Peers); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("acme's second peer got %v, want [a]", got)
		}
		sw := s.Swarms()
		if len(sw) != 2 || sw[0].Tenant != "acme" || sw[0].Peers != 2 || sw[1].Tenant != "globex" || sw[1].Peers != 1 {
			t.Fatalf("swarms %+v: want acme with 2 peers, globex with 1", sw)
		}
	}},
	{name: "Caps", mod: func(c *Config) { c.MaxSwarmPeers, c.MaxSwarms = 2, 2 }, run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		announce(t, s, req("c", "a", "", 1))
		announce(t, s, req("c", "b", "", 1))
		if got := announce(t, s, req("c", "c", "", 1)).Peers; len(got) != 2 {
			t.Fatalf("over the swarm cap, c got %v: want answered with the 2 listed", peerIDs(got))
		}
		if got := peerIDs(announce(t, s, req("c", "a", "", 1)).Peers); !slices.Equal(got, []string{"b"}) {
			t.Fatalf("a got %v, want [b]: c is not listed", got)
		}
		announce(t, s, req("d", "a", "", 1))
		b, _ := json.Marshal(req("e", "a", "", 1))
		if code, body := post(t, s, b); code != http.StatusServiceUnavailable {
			t.Fatalf("a third swarm over --max-swarms 2: HTTP %d %s, want 503", code, body)
		}
	}},
	{name: "PagedListing", run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		const n = 25
		for i := range n {
			announce(t, s, req(fmt.Sprint("content", i), "a", "", 1))
		}
		seen := map[core.ContentID]bool{}
		next, pages := "", 0
		for {
			var page SwarmsResponse
			if err := json.Unmarshal(get(t, s, "/api/swarms?limit=10&after="+next), &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Swarms) > 10 {
				t.Fatalf("page of %d swarms, limit 10", len(page.Swarms))
			}
			for _, sw := range page.Swarms {
				if seen[sw.Content] {
					t.Fatalf("swarm %s listed twice", sw.Content.Short())
				}
				seen[sw.Content] = true
			}
			if pages++; page.Next == "" || pages > n {
				break
			}
			next = page.Next
		}
		if len(seen) != n || pages != 3 {
			t.Fatalf("listed %d swarms in %d pages, want %d in 3", len(seen), pages, n)
		}
	}},
	{name: "LargeSwarmSampled", run: func(t *testing.T, s *Server, _ *core.ManualClock) {
		// Larger than the Redis store's sample (128): peers come from
		// random picks, still distinct, never the asker, as many as wanted.
		for i := range 300 {
			announce(t, s, req("c", fmt.Sprint("p", i), "", 1))
		}
		got := peerIDs(announce(t, s, req("c", "p7", "", 1)).Peers)
		distinct := map[string]bool{}
		for _, id := range got {
			distinct[id] = true
		}
		if len(got) != 50 || len(distinct) != 50 || distinct["p7"] {
			t.Fatalf("got %d peers (%d distinct, self %v): want 50 distinct others", len(got), len(distinct), distinct["p7"])
		}
		if st := swarmOf(s, "c"); st.Peers != 300 {
			t.Fatalf("swarm %+v: want 300 peers", st)
		}
	}},
	{name: "StoppedPeerReplayRefused", run: func(t *testing.T, s *Server, clk *core.ManualClock) {
		code := func(r discovery.AnnounceRequest) int {
			b, _ := json.Marshal(r)
			c, _ := post(t, s, b)
			return c
		}
		t0 := clk.Now().UnixMilli() // signing times within the clock skew
		a := req("c", "a", "", 1)
		a.TS = t0 + 1000
		if c := code(a); c != http.StatusOK {
			t.Fatalf("first announce: HTTP %d", c)
		}
		if c := code(a); c != http.StatusForbidden {
			t.Fatalf("the same announce again: HTTP %d, want 403 (replay)", c)
		}
		stop := a
		stop.TS, stop.Event = t0+2000, discovery.EventStopped
		code(stop)
		a.TS = t0 + 1500
		if c := code(a); c != http.StatusForbidden {
			t.Fatalf("an announce signed before the stop: HTTP %d, want 403", c)
		}
		if st := swarmOf(s, "c"); st.Peers != 0 {
			t.Fatalf("replayed peer listed: %+v", st)
		}
		a.TS = t0 + 3000
		if c := code(a); c != http.StatusOK {
			t.Fatalf("a later announce: HTTP %d, want 200", c)
		}
	}},
}
