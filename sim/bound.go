package sim

import (
	"math"
	"time"
)

// KumarRoss is the lower bound on the time for n peers to each receive
// size bytes from a server uploading at serverUp while each peer uploads
// at peerUp and downloads at most at peerDown (bytes/s; 0 = unlimited):
// T* = max(F/u_s, F/d_min, N·F/(u_s + Σu_i)) (Kumar and Ross, 2006).
func KumarRoss(n int, size int64, serverUp, peerUp, peerDown float64) time.Duration {
	f := float64(size)
	t := f / serverUp
	if peerDown > 0 {
		t = math.Max(t, f/peerDown)
	}
	t = math.Max(t, float64(n)*f/(serverUp+float64(n)*peerUp))
	return time.Duration(t * float64(time.Second))
}
