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
	s.beginOriginLocked(i, now)
	s.origin++
	s.wg.Add(1)
	go s.fetchOrigin(i)
	return true
}

// beginOriginLocked registers chunk i's origin flight, whichever path
// fetches it (a lane or FetchFromOrigin): one request per chunk at a time,
// and the picker asks nobody else for it meanwhile.
func (s *Session) beginOriginLocked(i int, now time.Time) {
	s.originFlights[i] = make(chan struct{})
	s.picker.Requested(i, policy.Origin, now)
	s.originReqs.Add(1)
}

// aheadLocked counts the connected peers lacking chunk i that rank before
// us for its origin fetch: 0 means we are its designated fetcher. Only
// peers that fetch the whole content (FlagFetchAll) count: a peer fetching
// on demand may never want chunk i, and waiting on it would stall us. Nor
// does a peer that uploads nothing (P2P off or leech-only, see
// policy.Shares): it would never pass the chunk on.
func (s *Session) aheadLocked(i int) int {
	held := s.c.Len() > s.picker.Missing()
	return policy.Ahead(s.selfSeed, i, func(yield func(uint64) bool) {
		for _, p := range s.peers {
			if p.fetchAll && !p.bits.Has(i) && policy.Shares(p.bits.Count(), p.peerInterested, p.sentTo > 0, held) && !yield(p.seed) {
				return
			}
		}
	})
}

// fetchOrigin is a lane's origin fetch of chunk i (startOriginLocked): on
// failure the chunk waits out its retry back-off; on success the fetch time
// feeds the lane's latency, and the lane starts what comes next.
func (s *Session) fetchOrigin(i int) {
	defer s.wg.Done()
	ctx := s.context()
	began := s.cfg.Clock.Now()
	now, err := s.originChunk(ctx, i)
	defer s.mu.Unlock()
	s.origin--
	if err != nil {
		s.originFails[i]++
		s.originWait[i] = now.Add(s.retryDelayLocked(s.originFails[i]))
		if ctx.Err() == nil && !errors.Is(err, store.ErrWriteFailed) { // the store logs its own, once
			s.log.Warn("origin fetch failed", "chunk", s.c.Describe(i), "err", err)
		}
		return
	}
	s.lane.Observe(now.Sub(began))
	delete(s.originWait, i)
	delete(s.originFails, i)
	s.originLaneLocked(now)
}

// originChunk fetches chunk i from the origin, for a flight the caller
// registered (beginOriginLocked) while holding an origin gate slot. The
// store verifies the chunk; the slot is released with the outcome, the
// flight ended, and a first copy recorded as received; a failure is told
// to the picker. It returns holding s.mu, every origin fetch's one path.
func (s *Session) originChunk(ctx context.Context, i int) (time.Time, error) {
	h, size := s.c.Hash(i), s.c.Size(i)
	data, err := s.cfg.Origin.Chunk(ctx, h, int64(size))
	s.releaseGate(ctx, err)
	if err == nil {
		s.originDataIn.Add(int64(len(data)))
		err = s.cfg.Store.Put(h, data)
	}
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	s.endOriginLocked(i)
	if err == nil && !s.picker.Has(i) && !s.cfg.Store.Has(h) {
		err = errEvicted // a cache far smaller than what is wanted
	}
	if err != nil {
		s.picker.Failed(i, policy.Origin)
		if ctx.Err() == nil {
			s.originErrs.Add(1)
		}
		if errors.Is(err, store.ErrWriteFailed) {
			s.storeStateLocked(err)
		}
		return now, err
	}
	if !s.picker.Has(i) { // a peer may have been faster: count first copies only
		s.fromOrigin.Add(int64(size))
		s.receivedLocked(i, policy.Origin, now)
	}
	return now, nil
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
