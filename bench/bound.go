package bench

import (
	"math"
	"time"
)

// LowerBound is the least time in which n peers, each with download cap
// peerDown, can all receive size bytes from an origin that uploads at
// originUp while each peer uploads at peerUp (rates in bytes/s; 0 means
// unlimited):
//
//	T* = max(F/u_s, F/d_min, N·F/(u_s + Σu_i))
//
// The first term is the origin sending one copy, the second the slowest
// downloader, the third the whole swarm's upload carrying N copies. It is
// the classic bound for peer-assisted distribution (Kumar and Ross, 2006);
// no schedule beats it. With every rate unlimited it is 0.
func LowerBound(n int, size int64, originUp, peerUp, peerDown float64) time.Duration {
	if n <= 0 || size <= 0 {
		return 0
	}
	f := float64(size)
	t := 0.0
	if originUp > 0 {
		t = math.Max(t, f/originUp)
	}
	if peerDown > 0 {
		t = math.Max(t, f/peerDown)
	}
	if originUp > 0 && peerUp > 0 {
		t = math.Max(t, float64(n)*f/(originUp+float64(n)*peerUp))
	}
	return time.Duration(t * float64(time.Second))
}
