package policy

import "iter"

// The origin-assist sprint. With a capped assist budget B per peer, every
// peer spending B evenly makes everyone finish late and together. One peer
// finishing early is worth more: it seeds at full upload for the rest of
// the run, and a receiver that wants the content now gets it. So the swarm
// reshapes the same total, (n+1)·B over self and n neighbours, without any
// message: every peer ranks the same seeds, so every peer names the same
// leader. The leader may take min(F, 2·B, (n+1)·B/2) from the origin; the
// others share the rest evenly, and while the leader is still fetching they
// keep at most one assist request of their own in flight, and only when
// nothing else of theirs is at the origin, so that the origin's capacity
// goes to the leader first. Their uploads favour it too (PeerState.Sprint).

// SprintPeer is a connected peer as PlanSprint sees it.
type SprintPeer struct {
	Seed uint64 // its PeerSeed
	Done bool   // it holds every chunk
}

// SprintInputs is what PlanSprint asks of its caller.
type SprintInputs struct {
	// Self is our PeerSeed.
	Self uint64
	// Peers are the connected peers that fetch the whole content (a peer
	// fetching on demand may never want what a sprint brings). Nil: none.
	Peers iter.Seq[SprintPeer]
	// Budget is B, the per-peer assist budget (AssistBudget); 0 means
	// assist off or uncapped, where there is nothing to reshape.
	Budget int64
	// Size is the content's size, F.
	Size int64
}

// Sprint is PlanSprint's answer.
type Sprint struct {
	// On: a sprint applies (a capped assist budget and at least one
	// neighbour that fetches everything).
	On bool
	// Leader is the seed of the sprint's leader (self included); Lead
	// reports that it is us.
	Leader uint64
	Lead   bool
	// Budget is our own assist budget: the leader's or the others' share,
	// or the input budget when no sprint applies.
	Budget int64
	// Yield: we are not the leader and it is still fetching, so our assist
	// fetches wait until nothing of ours is at the origin (AssistSlots).
	Yield bool
}

// PlanSprint names the sprint's leader, the connected fetch-all peer (or
// self) with the lowest PeerSeed, and our share of the swarm's assist
// budget. Pure: the session and the simulator call it with what they see.
func PlanSprint(in SprintInputs) Sprint {
	sp := Sprint{Budget: in.Budget, Leader: in.Self, Lead: true}
	if in.Budget <= 0 || in.Peers == nil {
		return sp
	}
	n, leaderDone := 0, false
	for p := range in.Peers {
		n++
		if p.Seed < sp.Leader {
			sp.Leader, sp.Lead, leaderDone = p.Seed, false, p.Done
		}
	}
	if n == 0 {
		return sp
	}
	b, total := in.Budget, int64(n+1)*in.Budget
	lead := min(2*b, total/2)
	if in.Size > 0 {
		lead = min(lead, in.Size)
	}
	sp.On = true
	if sp.Lead {
		sp.Budget = lead
		return sp
	}
	sp.Budget = max((total-lead)/int64(n), 1)
	sp.Yield = !leaderDone
	return sp
}

// AssistSlots is how many assist fetches to start now with free origin
// slots and inFlight of our origin requests already in flight: all free
// slots, unless we yield to a fetching leader, when it is one and only if
// nothing of ours is in flight.
func (s Sprint) AssistSlots(free, inFlight int) int {
	if !s.Yield {
		return max(free, 0)
	}
	if inFlight > 0 {
		return 0
	}
	return min(max(free, 0), 1)
}
