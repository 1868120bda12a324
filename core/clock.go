package core

import (
	"context"
	"time"
)

// Clock is the only way Shoal's policy code learns the time, so tests and the
// simulator can drive it.
type Clock interface {
	Now() time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// ManualClock is a clock that only moves when told; for tests and the simulator.
// It is not safe for concurrent use.
type ManualClock struct{ T time.Time }

// Now returns the current manual time.
func (c *ManualClock) Now() time.Time { return c.T }

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) { c.T = c.T.Add(d) }

// Sleep waits for d or until ctx ends, whichever is first, and returns
// ctx.Err() in the second case. For I/O code (players, benchmarks, rate
// limits); policy code takes a Clock instead.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
