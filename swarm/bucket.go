package swarm

import (
	"context"
	"sync"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// Bucket is an upload cap shared by the sessions of a node: the policy
// package's token bucket behind a mutex, waited on in real time.
type Bucket struct {
	clock core.Clock

	mu sync.Mutex
	tb *policy.TokenBucket // guarded by mu
}

// NewBucket caps uploads at rate bytes/s (burst: 256 KiB or 1/10 s of rate).
func NewBucket(rate float64, clock core.Clock) *Bucket {
	if clock == nil {
		clock = core.RealClock{}
	}
	burst := max(int64(rate/10), 256<<10)
	return &Bucket{clock: clock, tb: policy.NewTokenBucket(rate, burst, clock.Now())}
}

// Wait blocks until n bytes may be sent.
func (b *Bucket) Wait(ctx context.Context, n int) error {
	b.mu.Lock()
	d := b.tb.Reserve(b.clock.Now(), int64(n))
	b.mu.Unlock()
	if d <= 0 {
		return nil
	}
	return core.Sleep(ctx, d)
}

// SetRate changes the cap to bytesPerSec (0: unlimited), for senders
// already waiting too.
func (b *Bucket) SetRate(bytesPerSec float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tb.SetLimit(b.clock.Now(), bytesPerSec, max(int64(bytesPerSec/10), 256<<10))
}
