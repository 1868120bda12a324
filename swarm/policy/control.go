package policy

import "time"

// The session's control loop: the defaults and rules that swarm.Session
// and the simulator (sim) both run. They live here, once, so that the
// simulator's promise — capacity planning with the peers' own behaviour —
// cannot drift from what the peers do. A knob the simulator exposes in its
// scenarios defaults to the value below.
const (
	// DefaultGrace is how long the swarm gets before chunks no connected
	// peer has go to the origin: enough for the handshakes (and their
	// bitfields) of a peer's first connections to arrive. Longer only
	// delays start-up: a chunk that a peer announces later is simply not a
	// fallback candidate any more, and the origin designation (Ahead)
	// already keeps a flash crowd at about one origin copy.
	DefaultGrace = time.Second

	// DefaultAssumedRate (bytes/s) stands in for a peer's rate until it has
	// been measured: 1 MiB/s, a 256 KiB chunk in 250 ms, what a broadband
	// uploader serving a few peers gives each. It only matters for the
	// deadline lane's arrival estimates in a connection's first seconds.
	DefaultAssumedRate = 1 << 20

	// DefaultTick is the period of the session's control loop: choking,
	// request top-ups and timeouts, the origin lane. The simulator ticks
	// more coarsely by default (sim.Swarm.Tick) for speed; its scenarios
	// may set this value.
	DefaultTick = 100 * time.Millisecond

	// DefaultOriginParallel bounds one session's origin requests in flight.
	DefaultOriginParallel = 4

	// DefaultMaxPeers caps one swarm's connections.
	DefaultMaxPeers = 50

	// Request pipelining (RequestDepth): requests in flight to a source
	// cover PipelineTarget of its measured rate, between PipelineMin and
	// PipelineMax requests.
	PipelineTarget = 500 * time.Millisecond
	PipelineMin    = 4
	PipelineMax    = 64

	// TakeoverWait is how long each peer ranked ahead of us for a chunk
	// gets to fetch it from the origin before we do (OriginLane). Long
	// enough for a designated fetch to land and be announced; short enough
	// that a designated peer without origin access (which nobody can tell
	// from outside) stalls the chunk for seconds, not forever.
	TakeoverWait = 5 * time.Second
	// TakeoverLatencyFactor scales the wait with the origin's measured
	// fetch time: a loaded origin (or host) slows the designated peer as
	// much as us, so it gets several of our own fetch times, at least
	// TakeoverWait.
	TakeoverLatencyFactor = 8

	// AnnounceInterval is the tracker's default re-announce interval: how
	// often a peer asks the tracker for peers (and the simulated peers
	// re-announce when short of neighbours).
	AnnounceInterval = 30 * time.Second
)

// RequestDepth is how many requests the session keeps in flight to a
// source measured at rate bytes/s: PipelineDepth with the session's
// target and bounds.
func RequestDepth(rate float64, chunkSize int64) int {
	return PipelineDepth(rate, chunkSize, PipelineTarget, PipelineMin, PipelineMax)
}

// AssistBudget is the origin-assist budget, in bytes, of a content of size
// bytes for an assist setting x (what `--origin-assist` and the
// simulator's origin_assist take): x > 0 is that fraction of the content,
// fetched beyond the peer's designated share; 0 (off) and x < 0 (no cap)
// give 0, which the session reads as "no budget".
func AssistBudget(x float64, size int64) int64 {
	if x <= 0 {
		return 0
	}
	return max(int64(x*float64(size)), 1)
}
