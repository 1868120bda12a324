package policy

import (
	"slices"
	"testing"
	"time"
)

func sprintPeers(ps ...SprintPeer) func(func(SprintPeer) bool) {
	return slices.Values(ps)
}

func TestPlanSprintSharesTheBudget(t *testing.T) {
	const f = 1000
	tests := []struct {
		name string
		in   SprintInputs
		want Sprint
	}{
		{"assist off or uncapped: no sprint",
			SprintInputs{Self: 5, Peers: sprintPeers(SprintPeer{Seed: 1}), Size: f},
			Sprint{Leader: 5, Lead: true}},
		{"no neighbour: no sprint",
			SprintInputs{Self: 5, Budget: 300, Size: f},
			Sprint{Leader: 5, Lead: true, Budget: 300}},
		{"leader of ten takes 2B",
			SprintInputs{Self: 1, Budget: 300, Size: f, Peers: sprintPeers(
				SprintPeer{Seed: 2}, SprintPeer{Seed: 3}, SprintPeer{Seed: 4}, SprintPeer{Seed: 5}, SprintPeer{Seed: 6},
				SprintPeer{Seed: 7}, SprintPeer{Seed: 8}, SprintPeer{Seed: 9}, SprintPeer{Seed: 10})},
			Sprint{On: true, Leader: 1, Lead: true, Budget: 600}},
		{"one of ten yields to a fetching leader",
			SprintInputs{Self: 5, Budget: 300, Size: f, Peers: sprintPeers(
				SprintPeer{Seed: 2}, SprintPeer{Seed: 3}, SprintPeer{Seed: 4}, SprintPeer{Seed: 1}, SprintPeer{Seed: 6},
				SprintPeer{Seed: 7}, SprintPeer{Seed: 8}, SprintPeer{Seed: 9}, SprintPeer{Seed: 10})},
			Sprint{On: true, Leader: 1, Budget: (3000 - 600) / 9, Yield: true}},
		{"the leader done: no yield",
			SprintInputs{Self: 5, Budget: 300, Size: f, Peers: sprintPeers(SprintPeer{Seed: 9}, SprintPeer{Seed: 1, Done: true})},
			Sprint{On: true, Leader: 1, Budget: (900 - 450) / 2}},
		{"two peers: (n+1)B/2 caps the leader",
			SprintInputs{Self: 1, Budget: 300, Size: f, Peers: sprintPeers(SprintPeer{Seed: 2})},
			Sprint{On: true, Leader: 1, Lead: true, Budget: 300}},
		{"the content caps the leader",
			SprintInputs{Self: 1, Budget: 800, Size: f, Peers: sprintPeers(SprintPeer{Seed: 2}, SprintPeer{Seed: 3}, SprintPeer{Seed: 4})},
			Sprint{On: true, Leader: 1, Lead: true, Budget: f}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := PlanSprint(tc.in)
			if got != tc.want {
				t.Fatalf("PlanSprint = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Every peer of a swarm computes the same leader, and the shares add up to
// no more than the swarm's (n+1)·B.
func TestPlanSprintAgreesAcrossPeers(t *testing.T) {
	const n, b, f = 12, 260, 1000
	seeds := make([]uint64, n)
	for k := range seeds {
		seeds[k] = PeerSeed(PeerKey([]byte{byte(k), 'p'}))
	}
	leaders := map[uint64]int{}
	var total int64
	for k, self := range seeds {
		var others []SprintPeer
		for j, s := range seeds {
			if j != k {
				others = append(others, SprintPeer{Seed: s})
			}
		}
		sp := PlanSprint(SprintInputs{Self: self, Peers: slices.Values(others), Budget: b, Size: f})
		leaders[sp.Leader]++
		total += sp.Budget
		if sp.Lead != (sp.Leader == self) || sp.Yield == sp.Lead {
			t.Fatalf("peer %d: %+v", k, sp)
		}
	}
	if len(leaders) != 1 {
		t.Fatalf("leaders %v, want one", leaders)
	}
	if total > n*b || total < n*b-n {
		t.Fatalf("shares add up to %d, want about %d", total, n*b)
	}
}

func TestSprintAssistSlots(t *testing.T) {
	tests := []struct {
		sp             Sprint
		free, inFlight int
		want           int
	}{
		{Sprint{}, 4, 0, 4},
		{Sprint{Lead: true, On: true}, 3, 1, 3},
		{Sprint{On: true, Yield: true}, 4, 0, 1},
		{Sprint{On: true, Yield: true}, 3, 1, 0},
		{Sprint{On: true, Yield: true}, 0, 0, 0},
	}
	for _, tc := range tests {
		if got := tc.sp.AssistSlots(tc.free, tc.inFlight); got != tc.want {
			t.Errorf("%+v.AssistSlots(%d, %d) = %d, want %d", tc.sp, tc.free, tc.inFlight, got, tc.want)
		}
	}
}

func TestChokerReservesSlotForSprintLeader(t *testing.T) {
	c := NewChoker(ChokerConfig{Rand: seeded(1)})
	peers := leechers(10, 80, 30, 70, 20, 60, 50)
	if got := c.Tick(t0, false, peers); slices.Contains(got, "p0") && slices.Contains(c.Regular(), "p0") {
		t.Fatalf("slow p0 got a regular slot without the sprint: %v", got)
	}
	// Mid-round: the leader gets a regular slot at once, and keeps it.
	peers[0].Sprint = true
	for _, d := range []time.Duration{time.Second, 10 * time.Second, 20 * time.Second} {
		c.Tick(at(d), false, peers)
		reg := c.Regular()
		if !slices.Contains(reg, "p0") || len(reg) != DefaultSlots {
			t.Fatalf("at %v Regular = %v, want p0 among %d", d, reg, DefaultSlots)
		}
		if o, ok := c.Optimistic(); ok && o == "p0" {
			t.Fatalf("at %v the leader holds the optimistic slot too", d)
		}
	}
	// Seeding too.
	c.Tick(at(21*time.Second), true, peers)
	if !slices.Contains(c.Regular(), "p0") {
		t.Fatalf("seeding: Regular = %v, want p0", c.Regular())
	}
	// Not interested: no slot.
	peers[0].Interested = false
	if got := c.Tick(at(22*time.Second), true, peers); slices.Contains(got, "p0") {
		t.Fatalf("an uninterested leader is unchoked: %v", got)
	}
}
