package policy

import (
	"math"
	"time"
)

// DefaultRateTau is the time constant of a zero Rate.
const DefaultRateTau = 5 * time.Second

// Rate estimates a transfer rate in bytes/s from (time, bytes) samples: an
// exponentially weighted moving average in continuous time, so irregular
// sample spacing (one sample per chunk) is handled exactly. Each byte counts
// with weight e^(-age/Tau), so a constant rate R reads as R and old traffic
// fades with time constant Tau. Early on the estimate is divided by the
// weight accumulated since the first sample (as in Adam's bias correction),
// so a new link reads its true rate within a second or so instead of
// ramping up over several Tau. The zero value is ready to use.
type Rate struct {
	// Tau is the averaging time constant; zero means DefaultRateTau.
	Tau time.Duration

	v           float64 // decayed bytes/tau as of last
	first, last time.Time
	started     bool
}

// minSpan keeps the bias correction from dividing by ~0 right after the
// first sample: a lone burst reads as that many bytes over one second.
const minSpan = time.Second

func (r *Rate) tau() float64 {
	if r.Tau <= 0 {
		return DefaultRateTau.Seconds()
	}
	return r.Tau.Seconds()
}

// Add records n bytes transferred at t. Samples older than the last one are
// counted as if at the last one's time.
func (r *Rate) Add(t time.Time, n int64) {
	if !r.started {
		r.started, r.first, r.last = true, t, t
	}
	if t.After(r.last) {
		r.v *= math.Exp(-t.Sub(r.last).Seconds() / r.tau())
		r.last = t
	}
	r.v += float64(n) / r.tau()
}

// At returns the estimated rate at t, in bytes/s; 0 before any sample.
func (r *Rate) At(t time.Time) float64 {
	if !r.started {
		return 0
	}
	tau := r.tau()
	v := r.v
	if t.After(r.last) {
		v *= math.Exp(-t.Sub(r.last).Seconds() / tau)
	}
	span := t.Sub(r.first)
	if span < minSpan {
		span = minSpan
	}
	return v / (1 - math.Exp(-span.Seconds()/tau))
}
