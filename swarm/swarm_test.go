package swarm

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// TestThirtyPeersFetch64MiB runs on virtual time (a synctest bubble): the
// grace, the takeover waits and the ticks cost no wall-clock time, and a
// loaded machine changes nothing but how long the test takes.
func TestThirtyPeersFetch64MiB(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 64 << 20
		h := newHarness(t, "flash", 1, 256<<10, size)
		var peers []*hpeer
		for i := range 30 {
			peers = append(peers, h.addPeer(fmt.Sprintf("peer-%02d", i), true))
		}
		h.waitAll(peers, 5*time.Minute)
		for _, p := range peers {
			h.checkBytes(p)
		}
		egress := h.origin.BytesServed()
		t.Logf("origin egress %.2f × F", float64(egress)/size)
		if egress > size*13/10 {
			t.Fatalf("origin served %d bytes = %.2f × F, want < 1.3 × F", egress, float64(egress)/size)
		}
		for _, p := range peers {
			p.stop()
		}
	})
}
