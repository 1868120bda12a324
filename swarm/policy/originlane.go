package policy

import "time"

// OriginLane decides which of the picker's origin fallback candidates a
// peer fetches now, so that a flash crowd costs the origin about one copy:
// a chunk that no connected peer has and that is not due yet is fetched
// only by its designated peer, the one that ranks first (Ahead == 0) among
// us and the connected peers that lack it. Every peer computes the same
// ranks, so in a well-connected swarm each such chunk leaves the origin
// once and spreads from there. A designated peer may have no origin
// access, so once our own share is started (slots left over), the peer
// ranked k-th takes over a chunk that has waited k × TakeoverWait() since.
// Deadline chunks skip the designation, and so does every chunk while the
// picker's mode fetches nothing from peers (ModeOff): no peer would pass
// the chunk on to us, so every one we want is ours to fetch.
//
// swarm.Session and the simulator both run it; the zero value is not
// usable, call NewOriginLane. Not safe for concurrent use.
type OriginLane struct {
	// since is when each chunk designated to another peer was first seen
	// with a slot to spare: its takeover clock. Entries go when the chunk
	// is started or held (Forget), so it holds at most the chunks we lack.
	since   map[int]time.Time
	latency time.Duration // moving average of an origin fetch's duration
}

// NewOriginLane returns a lane with no takeover clock running.
func NewOriginLane() *OriginLane { return &OriginLane{since: map[int]time.Time{}} }

// LaneInputs is what OriginLane.Plan asks of its caller.
type LaneInputs struct {
	// Ahead counts the connected peers lacking chunk i that rank before us
	// for its origin fetch (Ahead over their PeerSeeds); required.
	Ahead func(i int) int
	// Skip reports a chunk that may not go to the origin now (a fetch of
	// it already in flight outside the picker, a retry back-off). Nil:
	// none.
	Skip func(i int) bool
	// Start begins chunk i's origin fetch (the caller records it with
	// Picker.Requested) and reports whether it could: false (no origin
	// slot after all) ends the plan.
	Start func(i int) bool
}

// Plan starts up to free origin fetches among p.OriginFallback(now): first
// our own share in the picker's order (deadline chunks, then ascending
// index), then the chunks designated to others whose takeover wait is
// over. The takeover clock starts only when we have slots to spare: while
// we are busy with our own share the designated peer likely is too, and
// taking over would only fetch its chunks twice. It returns the slots
// left free: 0 once a Start was refused.
func (l *OriginLane) Plan(now time.Time, p *Picker, free int, in LaneInputs) int {
	start := func(i int) {
		if !in.Start(i) {
			free = 0
			return
		}
		delete(l.since, i)
		free--
	}
	var others []int // designated to a peer ranked before us
	for _, i := range p.OriginFallback(now, 0) {
		if free <= 0 {
			break
		}
		if in.Skip != nil && in.Skip(i) {
			continue
		}
		if _, due := p.Deadline(i); !due && p.mode.FetchFromPeers() && in.Ahead(i) > 0 {
			others = append(others, i)
			continue
		}
		start(i)
	}
	for _, i := range others {
		if free <= 0 {
			break
		}
		since, ok := l.since[i]
		if !ok {
			l.since[i] = now
			continue
		}
		if now.Sub(since) >= time.Duration(in.Ahead(i))*l.TakeoverWait() {
			start(i)
		}
	}
	return max(free, 0)
}

// Forget drops chunk i's takeover clock: call it when the chunk is held.
func (l *OriginLane) Forget(i int) { delete(l.since, i) }

// Observe records the duration of a successful origin fetch.
func (l *OriginLane) Observe(d time.Duration) { l.latency = (3*l.latency + d) / 4 }

// Latency is the moving average of Observe's durations (0 before any).
func (l *OriginLane) Latency() time.Duration { return l.latency }

// TakeoverWait is the wait per rank before taking over a chunk designated
// to another peer: max(TakeoverWait, TakeoverLatencyFactor × Latency()).
func (l *OriginLane) TakeoverWait() time.Duration {
	return max(TakeoverWait, TakeoverLatencyFactor*l.latency)
}
