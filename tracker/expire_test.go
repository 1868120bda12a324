package tracker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestExpireDropsExactlyTheSilent: through joins, re-announces, stops and
// a clock moving on by uneven steps, every expire drops exactly the peers
// silent for longer than the TTL, whether or not the oldest peer changed
// since the last call (expire skips calls when none can be due).
func TestExpireDropsExactlyTheSilent(t *testing.T) {
	r := newSampleRig(t, 9) // TTL one minute
	rng := rand.New(rand.NewPCG(9, 9))
	due := 0
	for step := range 5000 {
		r.now = r.now.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
		var want []string
		for _, sw := range r.st.swarms {
			for _, e := range sw.list {
				if r.now.Sub(e.lastSeen) > r.st.ttl {
					want = append(want, e.id)
				}
			}
		}
		var got []string
		for _, e := range r.st.expire(r.now) {
			got = append(got, e.id)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("step %d at %v: expired %v, want %v", step, r.now, got, want)
		}
		due += len(got)
		id := fmt.Sprintf("p%d", rng.IntN(80))
		var e *peerEntry
		if sw := r.st.swarms[r.key]; sw != nil {
			e = sw.peers[id]
		}
		if e != nil && rng.IntN(6) == 0 {
			r.st.remove(e) // a stop, the oldest peer or any other
		} else {
			r.announce(id, "eu", fmt.Sprintf("198.18.%d.1", rng.IntN(50)), 1)
		}
	}
	if due < 100 {
		t.Fatalf("only %d peers expired in the run: the test did not exercise expiry", due)
	}
}
