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

// takeoverWait is how long each peer ranked ahead of us for a chunk gets to
// fetch it from the origin before we do. Long enough for a designated fetch
// to land and be announced; short enough that a designated peer without
// origin access (which nobody can tell from outside) stalls the chunk for
// seconds, not forever.
const takeoverWait = 5 * time.Second

// originLaneLocked starts origin fetches for what the swarm cannot deliver,
// as policy.Picker.OriginFallback decides, with one refinement so that a
// flash crowd costs the origin about one copy: a chunk that nobody has and
// that is not due yet is fetched only by its designated peer, the one with
// the lowest rank(peer, chunk) among us and the connected peers (who all
// lack it, or it would not be a fallback candidate). Every peer computes the
// same ranks, so in a well-connected swarm each such chunk leaves the origin
// once and spreads from there. A designated peer may have no origin access,
// so once our own share is fetched (slots left over), the peer ranked k-th
// takes over a chunk that has waited k × takeoverWait since. Deadline chunks
// skip the designation.
func (s *Session) originLaneLocked(now time.Time) {
	if s.cfg.Origin == nil || s.complete || s.ctx == nil || s.stallErr != nil {
		return
	}
	free := s.cfg.OriginParallel - s.origin
	if free <= 0 {
		return
	}
	start := func(i int) {
		if !s.cfg.Gate.TryAcquire(now) {
			free = 0 // the peer's cap is reached, or its origin backs off
			return
		}
		delete(s.originSince, i)
		s.originFlights[i] = make(chan struct{})
		s.picker.Requested(i, policy.Origin, now)
		s.origin++
		free--
		s.originReqs.Add(1)
		s.wg.Add(1)
		go s.fetchOrigin(i)
	}
	var others []int // designated to a peer ranked before us
	for _, i := range s.picker.OriginFallback(now, 0) {
		if free == 0 {
			break
		}
		if _, flying := s.originFlights[i]; flying {
			continue // a direct fetch (FetchFromOrigin) has it
		}
		if t, ok := s.originWait[i]; ok && now.Before(t) {
			continue
		}
		if _, due := s.picker.Deadline(i); !due && s.aheadLocked(i) > 0 {
			others = append(others, i)
			continue
		}
		start(i)
	}
	// The takeover clock starts only when we have slots to spare: while we
	// are busy with our own share, the designated peer likely is too, and
	// taking over would only fetch its chunks twice.
	for _, i := range others {
		if free == 0 {
			break
		}
		since, ok := s.originSince[i]
		if !ok {
			s.originSince[i] = now
			continue
		}
		// A loaded origin (or host) slows the designated peer as much as
		// us: give it several of our own fetch times, at least takeoverWait.
		wait := max(takeoverWait, 8*s.originLatency)
		if now.Sub(since) >= time.Duration(s.aheadLocked(i))*wait {
			start(i)
		}
	}
	if s.cfg.OriginAssist {
		s.originAssistLocked(now, free)
	}
}

// rank orders peers for chunk i's origin designation (policy.OriginRank, so
// the simulator ranks exactly as the peers do).
func rank(peerMix uint64, i int) uint64 { return policy.OriginRank(peerMix, i) }

// aheadLocked counts the connected peers lacking chunk i that rank before
// us for its origin fetch: 0 means we are its designated fetcher. Only
// peers that fetch the whole content (FlagFetchAll) count: a peer fetching
// on demand may never want chunk i, and waiting on it would stall us.
func (s *Session) aheadLocked(i int) int {
	return policy.Ahead(s.selfMix, i, func(yield func(uint64) bool) {
		for _, p := range s.peers {
			if p.fetchAll && !p.bits.Has(i) && !yield(p.mix) {
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
		s.originLatency = (3*s.originLatency + now.Sub(began)) / 4
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
