package swarm

import (
	"time"

	"github.com/shoal-cdn/shoal/swarm/policy"
)

// originAssistLocked (Config.OriginAssist) fills the free origin slots with
// chunks we lack that no source is fetching for us. Rarest among the
// connected peers first, so that what the origin sends is what the swarm can
// least supply and most wants passed on; ties go by policy.OriginRank(us, chunk), so
// peers that start together ask the origin for different chunks rather than
// the same first ones. Cost: O(chunks) per slot filled.
func (s *Session) originAssistLocked(now time.Time, free int) {
	av := s.picker.Availability()
	for ; free > 0; free-- {
		best, bestCount, bestRank := -1, 0, uint64(0)
		for i := range s.c.Len() {
			if s.picker.Has(i) || !s.picker.Wanted(i) || !s.c.Known(i) || s.picker.InFlightTo(i) > 0 {
				continue
			}
			if t, ok := s.originWait[i]; ok && now.Before(t) {
				continue
			}
			n, r := av.Count(i), policy.OriginRank(s.selfSeed, i)
			if best < 0 || n < bestCount || n == bestCount && r < bestRank {
				best, bestCount, bestRank = i, n, r
			}
		}
		if best < 0 {
			return
		}
		if b := s.cfg.AssistBudget; b > 0 && s.assisted+int64(s.c.Size(best)) > b {
			return // the budget is spent: the swarm and the origin lane do the rest
		}
		if !s.startOriginLocked(best, now) {
			return
		}
		s.assisted += int64(s.c.Size(best))
	}
}
