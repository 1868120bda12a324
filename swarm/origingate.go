package swarm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// ErrOriginBackoff means an origin request was not made: recent origin
// requests failed and the gate is backing off.
var ErrOriginBackoff = errors.New("origin backing off after failures")

// Origin back-off: after a failed origin request the gate admits no new one
// for originBackoffFirst, doubling with each consecutive failure up to
// originBackoffMax, with jitter. A success ends it.
const (
	originBackoffFirst = time.Second
	originBackoffMax   = 30 * time.Second
)

// DefaultOriginRequests is the default cap on one peer's origin requests in
// flight, across its swarms: a media start-up's direct fetches (one
// FetchFromOrigin) fill it alone, so a segment arrives at full speed.
const DefaultOriginRequests = fetchParallel

// OriginGate is what one peer's sessions share about their origin: a cap
// on requests in flight and a back-off after failures, so neither many
// swarms nor an origin in trouble turn the peer into a load generator.
// Pass the same gate to every session (Config.Gate).
type OriginGate struct {
	clock core.Clock
	max   int

	mu       sync.Mutex
	inFlight int           // guarded by mu
	fails    int           // guarded by mu: consecutive failed requests
	until    time.Time     // guarded by mu: no new request before
	lastErr  error         // guarded by mu: the last failure, while backing off
	freed    chan struct{} // guarded by mu: closed (and replaced) when a slot frees
	rand     *rand.Rand    // guarded by mu
}

// InFlight is the number of origin requests holding a slot.
func (g *OriginGate) InFlight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inFlight
}

// NewOriginGate caps origin requests in flight at max (DefaultOriginRequests
// if max <= 0). A nil clock is the wall clock.
func NewOriginGate(max int, clock core.Clock) *OriginGate {
	if max <= 0 {
		max = DefaultOriginRequests
	}
	if clock == nil {
		clock = core.RealClock{}
	}
	return &OriginGate{clock: clock, max: max, freed: make(chan struct{}),
		rand: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// TryAcquire takes a slot if one is free and the gate is not backing off.
// The caller must Release it.
func (g *OriginGate) TryAcquire(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inFlight >= g.max || now.Before(g.until) {
		return false
	}
	g.inFlight++
	return true
}

// Acquire waits for a slot (until ctx ends). While the gate backs off it
// fails at once with ErrOriginBackoff, naming the last failure: a request
// that must not wait on the swarm fails fast rather than adding to an
// origin in trouble.
func (g *OriginGate) Acquire(ctx context.Context) error {
	for {
		g.mu.Lock()
		if now := g.clock.Now(); now.Before(g.until) {
			err := fmt.Errorf("%w (%d in a row, next try in %v): %w", ErrOriginBackoff, g.fails,
				g.until.Sub(now).Round(time.Millisecond), g.lastErr)
			g.mu.Unlock()
			return err
		}
		if g.inFlight < g.max {
			g.inFlight++
			g.mu.Unlock()
			return nil
		}
		freed := g.freed
		g.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release returns a slot with the request's outcome: a failure of the
// origin (err non-nil) starts the next, longer back-off, a success (nil)
// ends it. Requests that fail while a back-off runs were in flight together
// with the one that started it: they do not lengthen it. For outcomes that
// say nothing about the origin (the caller gave up), use ReleaseNeutral.
func (g *OriginGate) Release(now time.Time, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.releaseLocked()
	if err == nil {
		g.fails, g.until, g.lastErr = 0, time.Time{}, nil
		return
	}
	if now.Before(g.until) {
		return
	}
	g.fails++
	d := originBackoffFirst << min(g.fails-1, 16)
	d = min(d, originBackoffMax)
	d = d*3/4 + time.Duration(g.rand.Int64N(int64(d)/2+1))
	g.until, g.lastErr = now.Add(d), err
}

// ReleaseNeutral returns a slot whose request says nothing about the origin.
func (g *OriginGate) ReleaseNeutral() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.releaseLocked()
}

func (g *OriginGate) releaseLocked() {
	if g.inFlight <= 0 {
		panic("swarm: origin gate released more often than acquired")
	}
	g.inFlight--
	close(g.freed)
	g.freed = make(chan struct{})
}
