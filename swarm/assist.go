package swarm

import (
	"time"

	"github.com/shoal-cdn/shoal/swarm/policy"
)

// originAssistLocked (Config.OriginAssist) fills the free origin slots with
// the chunks policy.Picker.AssistPick chooses (the simulator's assisting
// peers run the same choice), within our share of the swarm's assist
// budget: policy.PlanSprint reshapes Config.AssistBudget so that one peer,
// the sprint's leader, finishes early, and the others yield the origin to
// it while it fetches.
func (s *Session) originAssistLocked(now time.Time, free int) {
	sp := s.sprintLocked()
	free = sp.AssistSlots(free, s.origin)
	skip := func(i int) bool {
		if !s.c.Known(i) {
			return true
		}
		t, ok := s.originWait[i]
		return ok && now.Before(t)
	}
	for ; free > 0; free-- {
		best := s.picker.AssistPick(now, s.selfSeed, skip)
		if best < 0 {
			return
		}
		if b := sp.Budget; b > 0 && s.assisted+int64(s.c.Size(best)) > b {
			return // the budget is spent: the swarm and the origin lane do the rest
		}
		if !s.startOriginLocked(best, now) {
			return
		}
		s.assisted += int64(s.c.Size(best))
	}
}

// sprintLocked is policy.PlanSprint over the connected peers that fetch
// the whole content (FlagFetchAll), as aheadLocked counts them. With
// OriginAssist off there is no sprint: the leader would be named, but
// nobody would spend anything on it.
func (s *Session) sprintLocked() policy.Sprint {
	if !s.cfg.OriginAssist {
		return policy.Sprint{Leader: s.selfSeed, Lead: true}
	}
	n := s.c.Len()
	return policy.PlanSprint(policy.SprintInputs{
		Self:   s.selfSeed,
		Budget: s.cfg.AssistBudget,
		Size:   s.c.Manifest.TotalSize(),
		Peers: func(yield func(policy.SprintPeer) bool) {
			for _, p := range s.peers {
				if p.fetchAll && !yield(policy.SprintPeer{Seed: p.seed, Done: p.bits.Count() == n}) {
					return
				}
			}
		},
	})
}
