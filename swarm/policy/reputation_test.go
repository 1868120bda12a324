package policy

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestReputationDecaysByHalfLife(t *testing.T) {
	r := NewReputation(ReputationConfig{HalfLife: 10 * time.Minute})
	if got := r.Record("p", Delivered, 8*DeliveryUnit, t0); !near(got, 8) {
		t.Fatalf("8 MiB delivered scores %v, want 8", got)
	}
	for k, want := range []float64{8, 4, 2, 1} {
		if got := r.Score("p", at(time.Duration(k)*10*time.Minute)); !near(got, want) {
			t.Fatalf("after %d half-lives score %v, want %v", k, got, want)
		}
	}
	// Penalties decay the same way, back towards zero.
	r.Record("q", Violated, 0, t0)
	if got := r.Score("q", at(20*time.Minute)); !near(got, -ViolationPenalty/4) {
		t.Fatalf("violation after two half-lives scores %v, want %v", got, -ViolationPenalty/4)
	}
	if r.Distrusted("q", t0) != true || r.Distrusted("q", at(time.Hour)) != false {
		t.Fatalf("a violation distrusts a peer now (%v) and not an hour later (%v)", r.Distrusted("q", t0), r.Distrusted("q", at(time.Hour)))
	}
	// A new event applies to the decayed score, not the stored one.
	r.Record("p", TimedOut, 0, at(10*time.Minute))
	if got := r.Score("p", at(10*time.Minute)); !near(got, 4-TimeoutPenalty) {
		t.Fatalf("timeout after one half-life scores %v, want %v", got, 4-TimeoutPenalty)
	}
}

func TestReputationOutcomesOrderPeers(t *testing.T) {
	r := NewReputation(ReputationConfig{})
	r.Record("fast", Delivered, 20*DeliveryUnit, t0)
	r.Record("slow", Delivered, 2*DeliveryUnit, t0)
	r.Record("busy", Refused, 0, t0)
	r.Record("late", TimedOut, 0, t0)
	r.Record("rude", Violated, 0, t0)
	r.Record("liar", BadChunk, 0, t0)
	keys := []PeerKey{"liar", "busy", "fast", "rude", "stranger", "late", "slow"}
	slices.SortFunc(keys, func(a, b PeerKey) int {
		if r.Score(a, t0) > r.Score(b, t0) {
			return -1
		}
		if r.Score(a, t0) < r.Score(b, t0) {
			return 1
		}
		return 0
	})
	want := []PeerKey{"fast", "slow", "stranger", "busy", "late", "rude", "liar"}
	if !slices.Equal(keys, want) {
		t.Fatalf("peers by score %v, want %v", keys, want)
	}
	// Bounds: credit is capped, debt is floored.
	r.Record("fast", Delivered, 1000*DeliveryUnit, t0)
	for range 5 {
		r.Record("liar", BadChunk, 0, t0)
	}
	if r.Score("fast", t0) != ScoreCap || r.Score("liar", t0) != ScoreFloor {
		t.Fatalf("scores %v and %v, want the cap %v and the floor %v", r.Score("fast", t0), r.Score("liar", t0), ScoreCap, ScoreFloor)
	}
}

func TestReputationForgetsLeastRecentPastBound(t *testing.T) {
	r := NewReputation(ReputationConfig{MaxPeers: 3})
	for k := range 3 {
		r.Record(PeerKey(fmt.Sprint("p", k)), TimedOut, 0, at(time.Duration(k)*time.Second))
	}
	r.Record("p0", TimedOut, 0, at(5*time.Second)) // p0 is now the most recent
	r.Record("p3", TimedOut, 0, at(6*time.Second)) // evicts p1
	if r.Len() != 3 {
		t.Fatalf("remembers %d peers, bound 3", r.Len())
	}
	if r.Score("p1", at(6*time.Second)) != 0 {
		t.Fatalf("p1 still scored after eviction")
	}
	for _, k := range []PeerKey{"p0", "p2", "p3"} {
		if r.Score(k, at(6*time.Second)) >= 0 {
			t.Fatalf("%s forgotten, want remembered", k)
		}
	}
	for k := range 1000 {
		r.Record(PeerKey(fmt.Sprint("x", k)), Delivered, DeliveryUnit, t0)
	}
	if r.Len() != 3 || len(r.peers) != 3 {
		t.Fatalf("after 1000 peers remembers %d (map %d), bound 3", r.Len(), len(r.peers))
	}
}

func TestChokerBreaksTiesByScore(t *testing.T) {
	// Six peers with no measured rate yet: the best-scored four get the
	// regular slots whatever the draw.
	for seed := range uint64(20) {
		ps := leechers(0, 0, 0, 0, 0, 0)
		for k := range ps {
			ps[k].Score = float64(k)
		}
		c := NewChoker(ChokerConfig{Rand: seeded(seed)})
		c.Tick(t0, false, ps)
		if got := keySet(c.Regular()); !slices.Equal(got, []PeerKey{"p2", "p3", "p4", "p5"}) {
			t.Fatalf("seed %d: regular %v, want the four best-scored", seed, got)
		}
	}
	// Tit-for-tat still rules: a faster peer beats a better-scored one.
	ps := leechers(10, 0, 0, 0, 0)
	ps[0].Score = -4
	for k := 1; k < len(ps); k++ {
		ps[k].Score = 40
	}
	c := NewChoker(ChokerConfig{Rand: seeded(1)})
	c.Tick(t0, false, ps)
	if !slices.Contains(c.Regular(), "p0") {
		t.Fatalf("regular %v lacks the fastest uploader p0", c.Regular())
	}
}

func TestChokerOptimisticSkipsDistrusted(t *testing.T) {
	// Four fast peers take the regular slots; of the three left, two are
	// distrusted, so every draw must land on the third.
	for seed := range uint64(30) {
		ps := leechers(100, 90, 80, 70, 0, 0, 0)
		ps[4].Score, ps[5].Score = DistrustScore-1, ScoreFloor
		c := NewChoker(ChokerConfig{Rand: seeded(seed)})
		for k := range 5 {
			c.Tick(at(time.Duration(k)*DefaultOptimisticInterval), false, ps)
			if opt, ok := c.Optimistic(); !ok || opt != "p6" {
				t.Fatalf("seed %d round %d: optimistic %q %v, want p6", seed, k, opt, ok)
			}
		}
		// Once the only trusted candidate turns distrusted, nobody gets
		// the slot.
		ps[6].Score = DistrustScore - 1
		c.Tick(at(10*DefaultOptimisticInterval), false, ps)
		if opt, ok := c.Optimistic(); ok {
			t.Fatalf("seed %d: optimistic %q with every candidate distrusted", seed, opt)
		}
	}
}

func TestPickerLeavesChunksToBetterSource(t *testing.T) {
	const n = 8
	p := newTestPicker(n, 1)
	withCounts(p, []int{2, 2, 2, 2, 1, 1, 1, 1})
	all := allBits(n)
	trusted := bitsOf(n, 0, 1, 2, 3) // what a better-scored peer holds
	got := p.Next(t0, Source{Key: "low", Has: all, Better: trusted}, n)
	if want := []int{4, 5, 6, 7}; !slices.Equal(sortedCopy(got), want) {
		t.Fatalf("distrusted source picked %v, want only %v (the rest is left to the better one)", got, want)
	}
	got = p.Next(t0, Source{Key: "good", Has: all}, n)
	if len(got) != n {
		t.Fatalf("source without Better picked %v, want all %d", got, n)
	}
}

func TestChokerSeedingPutsDistrustedLast(t *testing.T) {
	// Seeding has Slots+1 = 5 slots for six peers never unchoked: the
	// distrusted one waits for the next round, the others are drawn
	// whatever they gave us.
	for seed := range uint64(20) {
		ps := leechers(0, 0, 0, 0, 0, 0)
		ps[2].Score = DistrustScore - 1
		ps[4].Score = ScoreCap
		c := NewChoker(ChokerConfig{Rand: seeded(seed)})
		c.Tick(t0, true, ps)
		if got := keySet(c.Regular()); slices.Contains(got, "p2") || len(got) != 5 {
			t.Fatalf("seed %d: seeding slots %v, want the five trusted peers", seed, got)
		}
	}
}
