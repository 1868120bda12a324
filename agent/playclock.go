package agent

import "time"

// playClock is one playback session's account of what its player sees,
// reconstructed from the requests the gateway answers. It is pure: every
// method takes the time of the event, so tests drive it with made-up times.
//
// The model: the player starts playing when its first media segment has been
// fully sent, and plays at 1× from then on. delivered media runs out at
// playEnd; a segment sent after playEnd arrived later than its playback
// deadline, so the player stalled (for the difference) and resumes when it
// arrives. A request for anything but the next segment (a seek, a switch
// back) restarts the clock without counting a stall: the gateway cannot
// tell a seek's wait from a stall, and counting it would blame the swarm
// for the viewer's click. A repeated request (a retry) changes nothing.
type playClock struct {
	begun     time.Time     // first request of the session
	startup   time.Duration // begun → first segment fully sent; valid once started
	started   bool
	last      int       // index of the last segment delivered
	playEnd   time.Time // when the delivered media runs out
	stalls    int
	stallTime time.Duration
}

// delivered records that segment seg, dur long, was fully sent at t, and
// reports the stall it caused (0 if none). The first call ends start-up.
func (c *playClock) delivered(seg int, dur time.Duration, t time.Time) (stall time.Duration, first bool) {
	switch {
	case !c.started:
		c.started, first = true, true
		c.startup = max(t.Sub(c.begun), 0)
		c.playEnd = t.Add(dur)
	case seg == c.last:
		return 0, false // a retry of what was already delivered
	case seg != c.last+1:
		c.playEnd = t.Add(dur) // a seek: a new start, not a stall
	case t.After(c.playEnd):
		stall = t.Sub(c.playEnd)
		c.stalls++
		c.stallTime += stall
		c.playEnd = t.Add(dur)
	default:
		c.playEnd = c.playEnd.Add(dur)
	}
	c.last = seg
	return stall, first
}

// buffered is how much delivered media is left to play at t.
func (c *playClock) buffered(t time.Time) time.Duration {
	if !c.started {
		return 0
	}
	return max(c.playEnd.Sub(t), 0)
}
