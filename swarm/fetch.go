package swarm

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/shoal-cdn/shoal/store"
)

// ErrNoOrigin means a direct origin fetch was asked of a session that has
// no origin.
var ErrNoOrigin = errors.New("no origin configured")

// errEvicted: a chunk left the cache between being stored and recorded.
var errEvicted = errors.New("evicted from the cache as soon as stored")

// fetchParallel bounds the origin requests one FetchFromOrigin call keeps in
// flight: enough to fill a loopback or CDN link for a media segment, few
// enough that one caller cannot flood the origin.
const fetchParallel = 16

// FetchFromOrigin fetches the chunks of [from, to) not yet held straight
// from the origin, now, and returns once all of them are held, or with the
// first failure, which names the chunk. It bypasses the picker's decision,
// the origin lane's slot limit and the flash-crowd designation: it is for
// the few chunks that must not wait on the swarm at all, such as a media
// player's first segments, where any wait is start-up delay the viewer
// sees. Chunks are verified before they are stored and counted as origin
// bytes only when they are first copies, as every other fetch is.
func (s *Session) FetchFromOrigin(ctx context.Context, from, to int) error {
	if s.cfg.Origin == nil {
		return ErrNoOrigin
	}
	from, to = max(from, 0), min(to, s.c.Len())
	if from >= to {
		return nil
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	slots := make(chan struct{}, fetchParallel)
loop:
	for i := from; i < to; i++ {
		if s.Has(i) {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done(): // the caller gave up, or a chunk failed
			break loop
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := s.fetchDirect(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return err
	}
	return first
}

// fetchDirect fetches chunk i from the origin for FetchFromOrigin. The
// picker is told, so the lanes do not ask anyone else for it meanwhile (a
// request already in flight to a peer simply races it). One origin request
// per chunk at a time: if the origin lane is already fetching it, this
// waits for that fetch and asks again only if it failed.
func (s *Session) fetchDirect(ctx context.Context, i int) error {
	if !s.c.Known(i) {
		return fmt.Errorf("%s: %w", s.c.Describe(i), ErrNoLayer)
	}
	werr := s.cfg.Store.Writable() // a reader waits: a probe may run
	gated := false                 // holding one of the peer's origin slots
	defer func() {
		if gated {
			s.cfg.Gate.ReleaseNeutral()
		}
	}()
	for {
		s.mu.Lock()
		if done, err := s.settledLocked(i, werr); done {
			s.mu.Unlock()
			return err
		}
		ch, flying := s.originFlights[i]
		if !flying && gated {
			break // still holding mu
		}
		s.mu.Unlock()
		if !flying {
			if err := s.cfg.Gate.Acquire(ctx); err != nil {
				return fmt.Errorf("%s from the origin: %w", s.c.Describe(i), err)
			}
			gated = true
			continue // look again: another fetch may have started meanwhile
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		werr = s.cfg.Store.WriteErr()
	}
	s.beginOriginLocked(i, s.cfg.Clock.Now())
	s.mu.Unlock()
	gated = false // originChunk releases the slot
	_, err := s.originChunk(ctx, i)
	defer s.mu.Unlock()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, store.ErrWriteFailed):
		return fmt.Errorf("%s: %w", s.c.Describe(i), err)
	default:
		return fmt.Errorf("%s from the origin: %w", s.c.Describe(i), err)
	}
}
