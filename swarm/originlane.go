package swarm

import (
	"time"

	"github.com/shoal-cdn/shoal/swarm/policy"
)

// originRetry is how long a chunk waits after a failed origin fetch.
const originRetry = 2 * time.Second

// originLaneLocked starts origin fetches for what the swarm cannot deliver,
// as policy.Picker.OriginFallback decides, with one refinement so that a
// flash crowd costs the origin about one copy: a chunk that nobody has and
// that is not due yet is fetched only by its designated peer, the one with
// the lowest rank(peer, chunk) among us and the connected peers (who all
// lack it, or it would not be a fallback candidate). Every peer computes the
// same ranks, so in a well-connected swarm each such chunk leaves the origin
// once and spreads from there. Deadline chunks skip the designation.
func (s *Session) originLaneLocked(now time.Time) {
	if s.cfg.Origin == nil || s.complete || s.ctx == nil {
		return
	}
	free := s.cfg.OriginParallel - s.origin
	if free <= 0 {
		return
	}
	for _, i := range s.picker.OriginFallback(now, 0) {
		if free == 0 {
			break
		}
		if t, ok := s.originWait[i]; ok && now.Before(t) {
			continue
		}
		if _, due := s.picker.Deadline(i); !due && !s.designatedLocked(i) {
			continue
		}
		s.picker.Requested(i, policy.Origin, now)
		s.origin++
		free--
		s.originReqs.Add(1)
		s.wg.Add(1)
		go s.fetchOrigin(i)
	}
}

// rank orders peers for chunk i's origin designation.
func rank(peerMix uint64, i int) uint64 { return mix64(peerMix ^ uint64(i)*0x9e3779b97f4a7c15) }

func (s *Session) designatedLocked(i int) bool {
	mine := rank(s.selfMix, i)
	for _, p := range s.peers {
		if !p.bits.Has(i) && rank(p.mix, i) < mine {
			return false
		}
	}
	return true
}

// fetchOrigin fetches chunk i from the origin; the store verifies it.
func (s *Session) fetchOrigin(i int) {
	defer s.wg.Done()
	ctx := s.context()
	h, size := s.c.Hash(i), s.c.Size(i)
	data, err := s.cfg.Origin.Chunk(ctx, h, int64(size))
	if err == nil {
		err = s.cfg.Store.Put(h, data)
	}
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.origin--
	if err != nil {
		s.originErrs.Add(1)
		s.picker.Failed(i, policy.Origin)
		s.originWait[i] = now.Add(originRetry)
		if ctx.Err() == nil {
			s.log.Warn("origin fetch failed", "chunk", s.c.Describe(i), "err", err)
		}
		return
	}
	delete(s.originWait, i)
	s.fromOrigin.Add(int64(size))
	s.receivedLocked(i, policy.Origin, now)
	s.originLaneLocked(now)
}
