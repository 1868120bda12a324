package tracker

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"
)

// gate bounds the announces the tracker works on at once. An announce that
// finds every slot taken waits for one at most wait; past that the tracker
// is saturated and refuses it at once with 503 and a Retry-After, so an
// overloaded tracker answers quickly instead of letting requests queue
// until clients time out. A nil gate admits everything.
type gate struct {
	slots chan struct{}
	wait  time.Duration
}

func newGate(maxInFlight int, wait time.Duration) *gate {
	if unlimited(maxInFlight) {
		return nil
	}
	return &gate{slots: make(chan struct{}, maxInFlight), wait: wait}
}

// enter takes a slot, waiting at most g.wait (or until ctx ends). It
// reports whether the caller got one; if so it must call leave.
func (g *gate) enter(ctx context.Context) bool {
	if g == nil {
		return true
	}
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	if g.wait <= 0 {
		return false
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (g *gate) leave() {
	if g != nil {
		<-g.slots
	}
}

// inFlight is how many announces hold a slot now.
func (g *gate) inFlight() int {
	if g == nil {
		return 0
	}
	return len(g.slots)
}

// retryAfter sets the Retry-After header to d rounded up to whole seconds
// (at least 1, as the header has no fractions) and returns d in seconds
// for the JSON body, where fractions are allowed.
func retryAfter(w http.ResponseWriter, d time.Duration) float64 {
	h, iv := retryAfterValue(d)
	w.Header()["Retry-After"] = []string{h}
	return iv
}

// retryAfterValue is retryAfter's header value and seconds.
func retryAfterValue(d time.Duration) (string, float64) {
	secs := max(int64(math.Ceil(d.Seconds())), 1)
	return strconv.FormatInt(secs, 10), max(d.Seconds(), 1)
}
