package swarm

import (
	"context"
	"errors"
	"time"

	"github.com/shoal-cdn/shoal/store"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// A chunk whose origin fetch failed waits originRetry before the next,
// doubling with each consecutive failure up to originRetryMax, with jitter.
// The peer-wide back-off (OriginGate) comes on top, for an origin failing
// everything.
const (
	originRetry    = 2 * time.Second
	originRetryMax = time.Minute
)

// originLaneLocked starts origin fetches for what the swarm cannot deliver:
// policy.OriginLane decides which of policy.Picker.OriginFallback's
// candidates are ours to fetch now (the designation and takeover rules,
// shared with the simulator); this adds what only a real peer has: direct
// fetches in flight, per-chunk retry back-off and the peer-wide gate.
func (s *Session) originLaneLocked(now time.Time) {
	if s.cfg.Origin == nil || s.complete || s.ctx == nil || s.stallErr != nil {
		return
	}
	free := s.cfg.OriginParallel - s.origin
	if free <= 0 {
		return
	}
	free = s.lane.Plan(now, s.picker, free, policy.LaneInputs{
		Ahead: s.aheadLocked,
		Skip: func(i int) bool {
			if _, flying := s.originFlights[i]; flying {
				return true // a direct fetch (FetchFromOrigin) has it
			}
			t, ok := s.originWait[i]
			return ok && now.Before(t)
		},
		Start: func(i int) bool { return s.startOriginLocked(i, now) },
	})
	if s.cfg.OriginAssist && free > 0 { // not when the gate refused a start
		s.originAssistLocked(now, free)
	}
}

// startOriginLocked starts the lanes' origin fetch of chunk i (fetchOrigin)
// if the peer's origin gate admits it: not when its cap is reached or its
// origin backs off. Every lane fetch, designated, taken over or assist,
// starts here, so each one holds a gate slot that fetchOrigin releases.
func (s *Session) startOriginLocked(i int, now time.Time) bool {
	if !s.cfg.Gate.TryAcquire(now) {
		return false
	}
	s.originFlights[i] = make(chan struct{})
	s.picker.Requested(i, policy.Origin, now)
	s.origin++
	s.originReqs.Add(1)
	s.wg.Add(1)
	go s.fetchOrigin(i)
	return true
}

// aheadLocked counts the connected peers lacking chunk i that rank before
// us for its origin fetch: 0 means we are its designated fetcher. Only
// peers that fetch the whole content (FlagFetchAll) count: a peer fetching
// on demand may never want chunk i, and waiting on it would stall us.
func (s *Session) aheadLocked(i int) int {
	return policy.Ahead(s.selfSeed, i, func(yield func(uint64) bool) {
		for _, p := range s.peers {
			if p.fetchAll && !p.bits.Has(i) && !yield(p.seed) {
				return
			}
		}
	})
}

// fetchOrigin fetches chunk i from the origin; the store verifies it.
func (s *Session) fetchOrigin(i int) {
	defer s.wg.Done()
	ctx := s.context()
	h, size := s.c.Hash(i), s.c.Size(i)
	began := s.cfg.Clock.Now()
	data, err := s.cfg.Origin.Chunk(ctx, h, int64(size))
	s.releaseGate(ctx, err)
	if err == nil {
		err = s.cfg.Store.Put(h, data)
	}
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endOriginLocked(i)
	if err == nil && !s.picker.Has(i) && !s.cfg.Store.Has(h) {
		err = errEvicted // a cache far smaller than what is wanted
	}
	s.origin--
	if err == nil {
		s.lane.Observe(now.Sub(began))
	}
	if err != nil {
		s.originErrs.Add(1)
		s.picker.Failed(i, policy.Origin)
		s.originFails[i]++
		s.originWait[i] = now.Add(s.retryDelayLocked(s.originFails[i]))
		switch {
		case errors.Is(err, store.ErrWriteFailed):
			s.storeStateLocked(err) // the store logs it, once
		case ctx.Err() == nil:
			s.log.Warn("origin fetch failed", "chunk", s.c.Describe(i), "err", err)
		}
		return
	}
	delete(s.originWait, i)
	delete(s.originFails, i)
	if !s.picker.Has(i) { // a peer may have been faster: count first copies only
		s.fromOrigin.Add(int64(size))
		s.receivedLocked(i, policy.Origin, now)
	}
	s.originLaneLocked(now)
}

// endOriginLocked ends chunk i's origin flight, waking direct fetches that
// waited on it.
func (s *Session) endOriginLocked(i int) {
	if ch, ok := s.originFlights[i]; ok {
		close(ch)
		delete(s.originFlights, i)
	}
}

// releaseGate returns an origin slot with the outcome of its request: an
// origin error extends the peer's back-off; a request abandoned because
// its context ended says nothing about the origin.
func (s *Session) releaseGate(ctx context.Context, err error) {
	if err != nil && ctx.Err() != nil {
		s.cfg.Gate.ReleaseNeutral()
		return
	}
	s.cfg.Gate.Release(s.cfg.Clock.Now(), err)
}

// retryDelayLocked is how long a chunk waits after its n-th consecutive
// failed origin fetch.
func (s *Session) retryDelayLocked(n int) time.Duration {
	d := min(originRetry<<min(n-1, 16), originRetryMax)
	return d*3/4 + time.Duration(s.cfg.Rand.Int64N(int64(d)/2+1))
}
