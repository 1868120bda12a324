package policy

import (
	"math"
	"time"
)

// TokenBucket paces uploads under a byte-rate cap. It is driven by the
// caller's clock: every method takes now, so the simulator can use it.
// (golang.org/x/time/rate does the same job but reads the wall clock in its
// convenience methods and refuses requests larger than the burst, which a
// whole chunk under a small burst would be.)
type TokenBucket struct {
	rate   float64 // tokens (bytes) per second; <= 0 = unlimited
	burst  float64
	tokens float64 // may be negative: debt from Reserve
	last   time.Time
}

// NewTokenBucket returns a full bucket refilling at rate bytes/s up to burst
// bytes. rate <= 0 means no cap. burst < 1 is raised to 1.
func NewTokenBucket(rate float64, burst int64, now time.Time) *TokenBucket {
	b := &TokenBucket{rate: rate, burst: max(float64(burst), 1), last: now}
	b.tokens = b.burst
	return b
}

// SetLimit changes the rate and burst from now on, keeping the tokens
// accumulated so far (capped to the new burst).
func (b *TokenBucket) SetLimit(now time.Time, rate float64, burst int64) {
	b.refill(now)
	b.rate, b.burst = rate, max(float64(burst), 1)
	b.tokens = min(b.tokens, b.burst)
}

func (b *TokenBucket) refill(now time.Time) {
	if now.After(b.last) {
		if b.rate > 0 {
			b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		}
		b.last = now
	}
}

// Available is the number of tokens at now (negative while in debt).
func (b *TokenBucket) Available(now time.Time) float64 {
	if b.rate <= 0 {
		return math.Inf(1)
	}
	b.refill(now)
	return b.tokens
}

// TryTake takes n tokens if they are all available now and reports whether
// it did.
func (b *TokenBucket) TryTake(now time.Time, n int64) bool {
	if b.rate <= 0 {
		return true
	}
	b.refill(now)
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// Reserve takes n tokens unconditionally, going into debt if needed, and
// returns how long the caller must wait before sending those n bytes: until
// the debt is repaid. Successive reservations queue behind each other, so
// senders that honour the waits never exceed rate over any window longer
// than burst/rate. n may exceed the burst.
func (b *TokenBucket) Reserve(now time.Time, n int64) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	b.refill(now)
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(math.Ceil(-b.tokens / b.rate * float64(time.Second)))
}

// WaitFor is how long until n tokens will be available, without taking any.
func (b *TokenBucket) WaitFor(now time.Time, n int64) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	b.refill(now)
	short := float64(n) - b.tokens
	if short <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(short / b.rate * float64(time.Second)))
}
