package policy

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func keySet(ks []PeerKey) []PeerKey {
	ks = slices.Clone(ks)
	slices.Sort(ks)
	return ks
}

// leechers returns n interested peers p0..p(n-1) with download rates rates[k].
func leechers(rates ...float64) []PeerState {
	ps := make([]PeerState, len(rates))
	for k, r := range rates {
		ps[k] = PeerState{Key: PeerKey(fmt.Sprintf("p%d", k)), Interested: true, DownRate: r}
	}
	return ps
}

func TestChokerUnchokesTopDownloadRates(t *testing.T) {
	tests := []struct {
		name  string
		peers []PeerState
		want  []PeerKey
	}{
		{"top four", leechers(10, 80, 30, 70, 20, 60, 50), []PeerKey{"p1", "p3", "p5", "p6"}},
		{"fewer peers than slots", leechers(5, 1), []PeerKey{"p0", "p1"}},
		{"uninterested fast peer skipped", func() []PeerState {
			ps := leechers(100, 1, 2, 3, 4, 5)
			ps[0].Interested = false
			return ps
		}(), []PeerKey{"p2", "p3", "p4", "p5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChoker(ChokerConfig{Rand: seeded(1)})
			un := c.Tick(t0, false, tc.peers)
			if got := keySet(c.Regular()); !slices.Equal(got, tc.want) {
				t.Fatalf("Regular = %v, want %v", got, tc.want)
			}
			opt, ok := c.Optimistic()
			interested := 0
			for _, p := range tc.peers {
				if p.Interested {
					interested++
				}
			}
			if ok != (interested > len(tc.want)) {
				t.Fatalf("optimistic %q %v with %d interested peers", opt, ok, interested)
			}
			if ok {
				if slices.Contains(tc.want, opt) || !slices.Contains(un, opt) {
					t.Fatalf("optimistic %q overlaps regular or missing from %v", opt, un)
				}
			}
		})
	}
}

func TestChokerRegularSlotsOnlyEvery10s(t *testing.T) {
	c := NewChoker(ChokerConfig{Rand: seeded(1)})
	peers := leechers(50, 40, 30, 20, 10, 0)
	c.Tick(t0, false, peers)
	before := keySet(c.Regular())
	peers[5].DownRate = 1000 // p5 becomes the fastest at once
	for s := 1; s < 10; s++ {
		c.Tick(at(time.Duration(s)*time.Second), false, peers)
		if got := keySet(c.Regular()); !slices.Equal(got, before) {
			t.Fatalf("at %ds regular changed to %v before the interval", s, got)
		}
	}
	c.Tick(at(10*time.Second), false, peers)
	if got := c.Regular(); !slices.Contains(got, "p5") || slices.Contains(got, "p4") {
		t.Fatalf("at 10s regular = %v, want p5 in and p4 out", got)
	}
}

func TestChokerRefillsVacatedSlot(t *testing.T) {
	c := NewChoker(ChokerConfig{Rand: seeded(1)})
	peers := leechers(50, 40, 30, 20, 10, 5, 1)
	c.Tick(t0, false, peers)
	opt, _ := c.Optimistic()
	peers = slices.DeleteFunc(peers, func(p PeerState) bool { return p.Key == "p0" })
	c.Tick(at(time.Second), false, peers)
	reg := c.Regular()
	if len(reg) != DefaultSlots || slices.Contains(reg, "p0") || slices.Contains(reg, opt) {
		t.Fatalf("after p0 left regular = %v (optimistic %s)", reg, opt)
	}
}

func TestChokerOptimisticRotatesEvery30s(t *testing.T) {
	c := NewChoker(ChokerConfig{Rand: seeded(3)})
	peers := leechers(100, 90, 80, 70, 0, 0, 0, 0, 0, 0)
	var changes []int
	var cur PeerKey
	for s := 0; s <= 150; s++ {
		c.Tick(at(time.Duration(s)*time.Second), false, peers)
		opt, ok := c.Optimistic()
		if !ok {
			t.Fatalf("no optimistic unchoke at %ds", s)
		}
		if slices.Contains(c.Regular(), opt) {
			t.Fatalf("optimistic %s holds a regular slot", opt)
		}
		if opt != cur {
			changes = append(changes, s)
			cur = opt
		}
	}
	if want := []int{0, 30, 60, 90, 120, 150}; !slices.Equal(changes, want) {
		t.Fatalf("optimistic changed at %v s, want %v", changes, want)
	}
}

func TestChokerSeedingRotationIsFair(t *testing.T) {
	const n = 20
	c := NewChoker(ChokerConfig{Rand: seeded(5)})
	peers := make([]PeerState, n)
	for k := range peers {
		// Upload rates differ wildly; round robin must not care.
		peers[k] = PeerState{Key: PeerKey(fmt.Sprintf("s%d", k)), Interested: true, UpRate: float64(k * k * 1000)}
	}
	unchokedFor := map[PeerKey]int{}
	for s := range 400 {
		un := c.Tick(at(time.Duration(s)*time.Second), true, peers)
		if len(un) != DefaultSlots+1 {
			t.Fatalf("at %ds %d unchoked, want %d", s, len(un), DefaultSlots+1)
		}
		for _, k := range un {
			unchokedFor[k]++
		}
	}
	lo, hi := 1<<30, 0
	for _, p := range peers {
		lo, hi = min(lo, unchokedFor[p.Key]), max(hi, unchokedFor[p.Key])
	}
	// 400 s × 5 slots / 20 peers = 100 s each; rotation in 10 s turns.
	if lo == 0 || hi-lo > 10 {
		t.Fatalf("unchoked seconds per peer range %d..%d: not a fair rotation (%v)", lo, hi, unchokedFor)
	}
}

func TestChokerSwitchToSeedingRecomputesAtOnce(t *testing.T) {
	c := NewChoker(ChokerConfig{Rand: seeded(1)})
	peers := leechers(50, 40, 30, 20, 10, 5, 4, 3, 2, 1)
	leech := keySet(c.Tick(t0, false, peers))
	c.Tick(at(time.Second), true, peers)
	if _, ok := c.Optimistic(); ok {
		t.Fatal("optimistic unchoke while seeding")
	}
	seed := c.Regular()
	if len(seed) != DefaultSlots+1 {
		t.Fatalf("seeding regular = %v", seed)
	}
	for _, k := range seed {
		if slices.Contains(leech, k) {
			t.Fatalf("seeding rotation kept %s, which was just unchoked (leech set %v)", k, leech)
		}
	}
}

func TestChokerFavoursNewPeersForOptimistic(t *testing.T) {
	const runs = 300
	newWins := 0
	for seed := range uint64(runs) {
		c := NewChoker(ChokerConfig{Rand: seeded(seed)})
		peers := leechers(100, 90, 80, 70, 0, 0, 0, 0, 0)
		for s := 0; s < 60; s += 10 {
			c.Tick(at(time.Duration(s)*time.Second), false, peers)
		}
		peers = append(peers, PeerState{Key: "new", Interested: true})
		c.Tick(at(60*time.Second), false, peers) // rotation due at 60 s
		if opt, _ := c.Optimistic(); opt == "new" {
			newWins++
		}
	}
	// Candidates: 4 old peers (the current optimistic is excluded) at weight
	// 1 and the newcomer at 3, so 3/7 ≈ 0.43; without the boost it'd be 0.2.
	if f := float64(newWins) / runs; f < 0.33 || f > 0.53 {
		t.Fatalf("newcomer drawn in %.2f of rotations, want ~0.43", f)
	}
}

// TestChokerNextRound: before NextRound, with the same peers, Tick keeps its
// answer; at NextRound it recomputes (the regular round, then the
// optimistic rotation).
func TestChokerNextRound(t *testing.T) {
	c := NewChoker(ChokerConfig{})
	t0 := time.Unix(1000, 0)
	if !c.NextRound().IsZero() {
		t.Fatalf("NextRound before the first Tick = %v, want zero", c.NextRound())
	}
	peers := leechers(10, 80, 30, 70, 20, 60, 50, 40)
	first := c.Tick(t0, false, peers)
	if got, want := c.NextRound(), t0.Add(DefaultChokeInterval); !got.Equal(want) {
		t.Fatalf("NextRound after the first Tick = %v, want %v", got, want)
	}
	// Rates change, but nothing is due: same answer.
	peers[0].DownRate = 1000
	for dt := time.Second; dt < DefaultChokeInterval; dt += time.Second {
		if got := c.Tick(t0.Add(dt), false, peers); !slices.Equal(got, first) {
			t.Fatalf("Tick at +%v = %v, want unchanged %v", dt, got, first)
		}
	}
	// At NextRound the regular slots are recomputed: p0 is now fastest.
	at := c.NextRound()
	if got := c.Tick(at, false, peers); !slices.Contains(got, "p0") {
		t.Fatalf("Tick at NextRound = %v, want p0 (now fastest) unchoked", got)
	}
	if got, want := c.NextRound(), t0.Add(2*DefaultChokeInterval); !got.Equal(want) {
		t.Fatalf("NextRound = %v, want %v", got, want)
	}
	c.Tick(t0.Add(2*DefaultChokeInterval), false, peers)
	// The optimistic rotation (t0+30s) comes before the next regular
	// round (t0+30s too); seeding has no optimistic rotation.
	if got, want := c.NextRound(), t0.Add(DefaultOptimisticInterval); !got.Equal(want) {
		t.Fatalf("NextRound = %v, want %v", got, want)
	}
	c.Tick(t0.Add(25*time.Second), true, peers)
	if got, want := c.NextRound(), t0.Add(25*time.Second+DefaultChokeInterval); !got.Equal(want) {
		t.Fatalf("seeding: NextRound = %v, want %v", got, want)
	}
}
