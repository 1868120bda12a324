package swarm

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// Bucket is an upload cap shared by the sessions of a node: the policy
// package's token bucket behind a mutex, waited on in real time. Its rate
// can change while senders wait (SetRate): an operator's upload cap, or a
// metered network, applies to what is already queued.
type Bucket struct {
	clock core.Clock

	mu   sync.Mutex
	tb   *policy.TokenBucket // guarded by mu
	rate float64             // guarded by mu: bytes/s, 0 unlimited
	// taken is the bytes every capped Wait has taken so far: a waiter's
	// own debt is repaid once the bucket's tokens plus what was taken
	// after it reach zero, whatever the rate did meanwhile.
	taken int64 // guarded by mu
	// changed is closed and replaced by SetRate, to wake the waiters.
	changed chan struct{} // guarded by mu
}

// NewBucket caps uploads at rate bytes/s (0: unlimited; burst: 256 KiB or
// 1/10 s of rate).
func NewBucket(rate float64, clock core.Clock) *Bucket {
	if clock == nil {
		clock = core.RealClock{}
	}
	rate = uploadRate(rate)
	return &Bucket{clock: clock, rate: rate, changed: make(chan struct{}),
		tb: policy.NewTokenBucket(rate, bucketBurst(rate), clock.Now())}
}

func bucketBurst(rate float64) int64 { return max(int64(rate/10), 256<<10) }

// uploadRate reads a rate: anything but a positive finite number of
// bytes/s (0, negative, NaN, +Inf) is no cap.
func uploadRate(r float64) float64 {
	if r > 0 && !math.IsInf(r, 1) {
		return r
	}
	return 0
}

// Wait blocks until n bytes may be sent. Senders go in the order they
// called Wait.
func (b *Bucket) Wait(ctx context.Context, n int) error {
	b.mu.Lock()
	d := b.tb.Reserve(b.clock.Now(), int64(n))
	if b.rate > 0 {
		b.taken += int64(n)
	}
	mark := b.taken
	for d > 0 {
		changed := b.changed
		b.mu.Unlock()
		if err := sleepUnless(ctx, d, changed); err != nil {
			return err
		}
		b.mu.Lock()
		d = b.waitLocked(mark)
	}
	b.mu.Unlock()
	return nil
}

// waitLocked is how long a waiter whose bytes took the bucket's count of
// taken bytes to mark still waits at the current rate.
func (b *Bucket) waitLocked(mark int64) time.Duration {
	avail := b.tb.Available(b.clock.Now()) // +Inf when unlimited
	owed := -(avail + float64(b.taken-mark))
	if owed <= 0 || b.rate <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(owed / b.rate * float64(time.Second)))
}

// sleepUnless waits for d, until wake is closed, or until ctx ends (its
// error).
func sleepUnless(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetRate changes the cap to bytesPerSec (0: unlimited) at once, for the
// senders already waiting too: the bytes they reserved are repaid at the
// new rate from now on.
func (b *Bucket) SetRate(bytesPerSec float64) {
	rate := uploadRate(bytesPerSec)
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	if rate == 0 || b.rate == 0 {
		// Into or out of no cap: a fresh bucket. Debt run up under the
		// old cap is forgiven with it (its waiters all go now), and a new
		// cap starts with a full burst, as NewBucket's does.
		b.tb = policy.NewTokenBucket(rate, bucketBurst(rate), now)
	} else {
		b.tb.SetLimit(now, rate, bucketBurst(rate))
	}
	b.rate = rate
	close(b.changed)
	b.changed = make(chan struct{})
}

// Rate is the cap in bytes/s (0: unlimited).
func (b *Bucket) Rate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rate
}
