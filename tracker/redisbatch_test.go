package tracker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/internal/redistest"
)

// TestRedisBatchAppliesInOrder sends one batch straight to Redis: a
// peer's start then stop in the same batch leaves it stopped (and a start
// after that stop, signed later, lists it again), a re-announce in the
// same batch as the join is not a second join, and announces to three
// swarms in one batch each land in their own swarm. It runs with one
// script call per batch (one Redis server) and with one call per swarm
// (the Redis Cluster path).
func TestRedisBatchAppliesInOrder(t *testing.T) {
	rds := redistest.Start(t)
	for _, perCall := range []int{maxRedisBatch, 1} {
		t.Run(fmt.Sprint("swarms-per-call-", perCall), func(t *testing.T) {
			rs, _ := redisReplicas(t, rds.URL(), 1)
			st := rs[0].store.(*redisStore)
			b := st.batch
			b.perCall = perCall
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
			mem := func(c string) string { return member(swarmKey{content: content(c)}) }
			ann := func(c, peer string, ev discovery.Event, ts, left int64) *pendingAnnounce {
				e := redisEntry{lastSeen: now, seed: left == 0}
				return &pendingAnnounce{mem: mem(c), now: now, peer: peer, event: eventCode(string(ev)), e: e,
					value: storedValue(ts, 0, 0, &e), sample: ev != discovery.EventStopped, reply: make(chan batchReply, 1)}
			}
			batch := []*pendingAnnounce{
				ann("x", "a", discovery.EventStarted, now+1, 5),
				ann("y", "b", discovery.EventStarted, now+1, 0),
				ann("x", "a", discovery.EventStopped, now+2, 5),
				ann("x", "c", discovery.EventStarted, now+1, 5),
				ann("x", "c", "", now+2, 0),
				ann("z", "d", discovery.EventStarted, now+1, 5),
				ann("y", "e", discovery.EventStarted, now+1, 5),
				ann("y", "e", discovery.EventStopped, now+2, 5),
				ann("y", "e", discovery.EventStarted, now+3, 5),
				ann("x", "a", "", now+1, 5), // signed before its stop: a replay
			}
			b.send(batch)
			want := []string{"joined", "joined", "left", "joined", "ok", "joined", "joined", "left", "joined", "replay"}
			var got []string
			for _, p := range batch {
				r := <-p.reply
				if r.err != nil {
					t.Fatalf("announce of %s: %v", p.peer, r.err)
				}
				got = append(got, r.status)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("statuses\n got %v\nwant %v", got, want)
			}
			ctx := context.Background()
			for _, tc := range []struct {
				c            string
				peers, seeds []string
			}{{"x", []string{"c"}, []string{"c"}}, {"y", []string{"b", "e"}, []string{"b"}}, {"z", []string{"d"}, nil}} {
				keys := st.swarmKeys(mem(tc.c))
				peers, _ := st.c.ZRange(ctx, keys[0], 0, -1).Result()
				seeds, _ := st.c.ZRange(ctx, keys[1], 0, -1).Result()
				if !slices.Equal(peers, tc.peers) || !slices.Equal(seeds, tc.seeds) {
					t.Errorf("swarm %s: peers %v seeds %v, want %v and %v", tc.c, peers, seeds, tc.peers, tc.seeds)
				}
			}
		})
	}
}

// TestRedisConcurrentSessions runs whole peer sessions (start,
// re-announces with growing counters, completed, stop) from many
// goroutines at once over two replicas and a few swarms, so announces
// are batched together. Every peer's own announces are in order (it waits
// for each answer), so at the end exactly the peers that did not stop are
// listed, as seeds, and the swarm totals are the sums of what they sent.
func TestRedisConcurrentSessions(t *testing.T) {
	rds := redistest.Start(t)
	rs, _ := redisReplicas(t, rds.URL(), 2)
	const peers, swarms, rounds = 48, 3, 6
	var wg sync.WaitGroup
	for i := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req(fmt.Sprint("swarm", i%swarms), fmt.Sprintf("peer%02d", i), "", 100)
			r.Event = discovery.EventStarted
			for k := range rounds {
				r.Downloaded, r.Uploaded = int64(10*(k+1)), int64(k+1)
				if k == rounds-2 {
					r.Left, r.Event = 0, discovery.EventCompleted
				}
				if k == rounds-1 && i%4 == 0 {
					r.Event = discovery.EventStopped
				}
				announce(t, rs[(i+k)%2], r) // alternate replicas
				r.Event = ""
			}
		}()
	}
	wg.Wait()
	for c := range swarms {
		var want SwarmStats
		want.Content = content(fmt.Sprint("swarm", c))
		for i := c; i < peers; i += swarms {
			if i%4 != 0 {
				want.Peers++
				want.Seeds++
			}
			want.Completed++
			want.Downloaded += 10 * rounds
			want.Uploaded += rounds
		}
		for _, s := range rs {
			if got := swarmOf(s, fmt.Sprint("swarm", c)); got != want {
				t.Errorf("swarm%d:\n got %+v\nwant %+v", c, got, want)
			}
		}
	}
}

// TestRedisCrowdNotHandedOneSample: newcomers to a large swarm arriving
// within the reuse window do not all get their peers from one read of 128
// entries: after maxSampleUses announces the replica reads another.
func TestRedisCrowdNotHandedOneSample(t *testing.T) {
	rds := redistest.Start(t)
	rs, clk := redisReplicas(t, rds.URL(), 1)
	s := rs[0]
	const old, crowd = 300, 48
	for i := range old {
		announce(t, s, req("c", fmt.Sprintf("old%03d", i), "", 0))
	}
	clk.Advance(DefaultRedisSampleReuse) // the crowd starts with no fresh sample
	got := map[string]bool{}
	for i := range crowd {
		for _, p := range announce(t, s, req("c", fmt.Sprintf("new%03d", i), "", 1)).Peers {
			if p.Peer[:3] == "old" {
				got[p.Peer] = true
			}
		}
	}
	if len(got) <= DefaultRedisSample {
		t.Fatalf("%d newcomers got %d distinct peers of the %d: want more than one sample's %d", crowd, len(got), old, DefaultRedisSample)
	}
}

// TestRedisScriptFlushedReloads: a Redis that lost its scripts (a restart,
// SCRIPT FLUSH) gets the announce script again and the announce is
// recorded once.
func TestRedisScriptFlushedReloads(t *testing.T) {
	rds := redistest.Start(t)
	rs, _ := redisReplicas(t, rds.URL(), 1)
	s := rs[0]
	announce(t, s, req("c", "p1", "", 0))
	if err := s.store.(*redisStore).c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	r := req("c", "p2", "", 5)
	r.Event, r.Downloaded = discovery.EventCompleted, 7
	if got := peerIDs(announce(t, s, r).Peers); !slices.Equal(got, []string{"p1"}) {
		t.Fatalf("after SCRIPT FLUSH p2 got %v, want [p1]", got)
	}
	if st := swarmOf(s, "c"); st.Peers != 2 || st.Completed != 1 || st.Downloaded != 7 {
		t.Fatalf("swarm %+v: want 2 peers, one completion, 7 bytes down (recorded once)", st)
	}
}

// TestRedisSwarmKeysExpire: every key of a swarm carries a TTL, also one
// created after the swarm (a first seed, the first transfer totals, the
// first stop), so an abandoned swarm vanishes from Redis even with no
// replica left to sweep it.
func TestRedisSwarmKeysExpire(t *testing.T) {
	rds := redistest.Start(t)
	rs, _ := redisReplicas(t, rds.URL(), 1)
	s := rs[0]
	st := s.store.(*redisStore)
	keys := st.swarmKeys(member(swarmKey{content: content("c")}))
	check := func(step string, want int) {
		t.Helper()
		n := 0
		for _, k := range keys {
			ttl, err := st.c.PTTL(context.Background(), k).Result()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case ttl == -2*time.Nanosecond || ttl == -2*time.Millisecond || ttl == -2*time.Second:
				// no such key (go-redis scales -2 by the unit)
			case ttl <= 0:
				t.Fatalf("after %s: key %s has no TTL (%v)", step, k, ttl)
			default:
				n++
			}
		}
		if n != want {
			t.Fatalf("after %s: %d keys with a TTL, want %d", step, n, want)
		}
	}
	a := req("c", "a", "", 5)
	announce(t, s, a)
	check("a leecher joined", 2) // peers, entries
	announce(t, s, req("c", "b", "", 0))
	check("a seed joined", 3) // and seeds
	a.Downloaded = 10
	announce(t, s, a)
	check("a's first bytes", 4) // and totals
	d := req("c", "d", "", 5)
	d.TS = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() // a stop remembered past the clock skew
	announce(t, s, d)
	d.Event, d.TS = discovery.EventStopped, d.TS+1
	announce(t, s, d)
	check("d stopped", 5) // and the stopped set
}

// TestRedisTrimGoesOnPastItsLimit: a crowd that expired together is more
// than one script call may remove (trimPerCall); the swarm stays due for a
// trim until it is clean, so the next batches go on at once rather than a
// call's worth a second.
func TestRedisTrimGoesOnPastItsLimit(t *testing.T) {
	rds := redistest.Start(t)
	rs, clk := redisReplicas(t, rds.URL(), 1)
	s := rs[0]
	st := s.store.(*redisStore)
	crowd := trimPerCall + trimPerCall/5
	for i := range crowd {
		announce(t, s, req("c", fmt.Sprintf("p%d", i), "", 5))
	}
	clk.Advance(st.ttl + time.Second) // the whole crowd expired
	last := st.swarmKeys(member(swarmKey{content: content("c")}))[0]
	for i := range 3 { // the clock stands still: trimEvery never passes
		announce(t, s, req("c", fmt.Sprintf("s%d", i), "", 5))
	}
	n, err := st.c.ZCard(context.Background(), last).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("%d peers in the swarm's last-seen set after three batches, want the 3 live ones (%d expired, %d removed per call)", n, crowd, trimPerCall)
	}
}
