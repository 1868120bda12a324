package swarm

import "time"

// originAssistLocked (Config.OriginAssist) fills the free origin slots with
// the chunks policy.Picker.AssistPick chooses (the simulator's assisting
// peers run the same choice), within Config.AssistBudget.
func (s *Session) originAssistLocked(now time.Time, free int) {
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
		if b := s.cfg.AssistBudget; b > 0 && s.assisted+int64(s.c.Size(best)) > b {
			return // the budget is spent: the swarm and the origin lane do the rest
		}
		if !s.startOriginLocked(best, now) {
			return
		}
		s.assisted += int64(s.c.Size(best))
	}
}
