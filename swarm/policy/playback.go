package policy

import "time"

// Playback rules: how a player's requests for media segments become fetch
// decisions — which segments come straight from the origin, which are due
// when, which are fetched ahead from peers, and when a late one goes to the
// origin after all. The peer's gateway (agent) applies them to the requests
// players make; the simulator's viewers (sim) apply them to the requests
// its modelled players make. Both take every value from here.
const (
	// StartupSegments is how many of a playback's first media segment
	// requests are fetched straight from the origin (bypassing the swarm's
	// grace and the origin designation), so start-up never waits on the
	// swarm. The same number of a live channel's first segments are.
	StartupSegments = 2

	// LookaheadSegments is how many of the rendition's following segments
	// each segment request prefetches from peers, each due when the player
	// will reach it.
	LookaheadSegments = 3

	// LateAfter: a segment the player is waiting for that has not come
	// this long after it was due is fetched straight from the origin
	// (what is still missing of it), which also turns a segment nobody has
	// into an error instead of a hang.
	LateAfter = time.Second

	// BufferSafety is kept in hand when a segment's deadline is set from
	// the player's buffer: the segment still has to travel to the player.
	BufferSafety = time.Second
)

// Live rules. A segment at the live edge is wanted by every viewer at once,
// but not yet: players hold a few segments (they start LivePlayerDelay
// behind the edge), so the newest one is played seconds after it is
// listed. Marking it due at once would send every peer to the origin for
// it (due chunks skip the origin designation that makes a swarm cost the
// origin about one copy). So a segment first seen as the newest of an
// update is left to the swarm for LiveEdgeSlack target durations; only
// then does a request make its missing chunks due. A segment that was
// already old when first seen (a viewer joining) gets LiveJoinPatience.
const (
	// LiveEdgeSlack is how long, in target durations, a segment listed as
	// the live edge is left to the swarm before a request for it makes it
	// due. A player that started three segments behind the edge with two
	// buffered needs the edge segment about two target durations after it
	// is listed; 1.5 leaves the rest for a last-moment origin fetch.
	LiveEdgeSlack = 1.5

	// LiveJoinPatience is how long a request for a segment that is not at
	// the live edge waits for peers, who most likely all hold it, before
	// it is due: a little start-up time for most of the segment's bytes
	// not coming from the origin once per joining viewer. The start-up
	// segments do not wait (the swarm connections are still being made,
	// and they set the start-up time), nor does one whose swarm has no
	// peer connected.
	LiveJoinPatience = 200 * time.Millisecond

	// LiveJoinPrefetch is how many of the newest segments a peer
	// prefetches from the first update of a channel it sees: players start
	// LivePlayerDelay segments behind the edge, so older ones would only
	// compete with start-up for the link.
	LiveJoinPrefetch = LivePlayerDelay

	// LiveStartHold bounds how long a joining peer holds those first
	// prefetches back while its player's start-up segments come.
	LiveStartHold = 2 * time.Second

	// LiveChunkSpacing spaces the deadlines of a due live segment's chunks,
	// in order, so the deadline lane fetches them front to back.
	LiveChunkSpacing = 20 * time.Millisecond

	// LivePlayerDelay is how many segments behind the live edge players
	// start (HLS asks clients to start at least three target durations
	// from the end of the playlist). It is the players' behaviour, which
	// the rules above assume and the simulator models.
	LivePlayerDelay = 3
)

// PlayClock is one playback's account of what its player sees,
// reconstructed from the segments it was sent. It is pure: every method
// takes the time of the event.
//
// The model: the player starts playing when its first media segment has
// been fully sent, and plays at 1× from then on. Delivered media runs out
// at a play end; a segment sent after it arrived later than its playback
// deadline, so the player stalled (for the difference) and resumes when it
// arrives. A delivery of anything but the next segment (a seek, a switch
// back) restarts the clock without counting a stall: the gateway cannot
// tell a seek's wait from a stall, and counting it would blame the swarm
// for the viewer's click. A repeated delivery (a retry) changes nothing.
type PlayClock struct {
	Begun     time.Time     // first request of the playback
	Startup   time.Duration // Begun → first segment fully sent; valid once Started
	Started   bool
	Last      int // index of the last segment delivered
	Stalls    int
	StallTime time.Duration
	playEnd   time.Time // when the delivered media runs out
}

// Delivered records that segment seg, dur long, was fully sent at t, and
// reports the stall it caused (0 if none). The first call ends start-up.
func (c *PlayClock) Delivered(seg int, dur time.Duration, t time.Time) (stall time.Duration, first bool) {
	switch {
	case !c.Started:
		c.Started, first = true, true
		c.Startup = max(t.Sub(c.Begun), 0)
		c.playEnd = t.Add(dur)
	case seg == c.Last:
		return 0, false // a retry of what was already delivered
	case seg != c.Last+1:
		c.playEnd = t.Add(dur) // a seek: a new start, not a stall
	case t.After(c.playEnd):
		stall = t.Sub(c.playEnd)
		c.Stalls++
		c.StallTime += stall
		c.playEnd = t.Add(dur)
	default:
		c.playEnd = c.playEnd.Add(dur)
	}
	c.Last = seg
	return stall, first
}

// Buffered is how much delivered media is left to play at t.
func (c *PlayClock) Buffered(t time.Time) time.Duration {
	if !c.Started {
		return 0
	}
	return max(c.playEnd.Sub(t), 0)
}

// Playback is the rules' state for one player's playback of one rendition
// (on demand): its play clock and how many segment requests it made.
type Playback struct {
	Clock    PlayClock
	requests int // media segment requests
}

// NewPlayback starts a playback whose first request came at begun.
func NewPlayback(begun time.Time) *Playback {
	return &Playback{Clock: PlayClock{Begun: begun}}
}

// Step is what one request of a playback calls for.
type Step struct {
	// Direct: fetch what is missing straight from the origin now, and
	// stream it as it arrives (start-up).
	Direct bool
	// More: start-up requests are still to come after this one. The
	// look-ahead waits for the last of them, or it would share the
	// viewer's link with the segments the player is waiting for.
	More bool
	// Due is when the requested segment is due: when the player's buffer
	// would run dry, less BufferSafety. A player filling its buffer asks
	// well ahead, and what it asks for early is better taken from peers.
	Due time.Time
}

// LateAt is when what is still missing of a segment due at Due goes to
// the origin (a Direct step fetches from the origin at once).
func (s Step) LateAt() time.Time { return s.Due.Add(LateAfter) }

// Request records a request at now and says what to do for it: segment
// is true for a media segment, false for an init segment (which belongs to
// start-up when asked for before the first segment was sent).
func (p *Playback) Request(now time.Time, segment bool) Step {
	st := Step{Due: now.Add(p.Slack(now))}
	if !segment {
		st.Direct, st.More = !p.Clock.Started, !p.Clock.Started
		return st
	}
	p.requests++
	st.Direct, st.More = p.requests <= StartupSegments, p.requests < StartupSegments
	return st
}

// Requests is the number of media segment requests so far.
func (p *Playback) Requests() int { return p.requests }

// Slack is how long the player can wait for its next segment without
// stalling: the media it has buffered by the play clock, less
// BufferSafety. Zero before playback starts.
func (p *Playback) Slack(now time.Time) time.Duration {
	return max(p.Clock.Buffered(now)-BufferSafety, 0)
}

// SegmentDue is a segment and when it is due.
type SegmentDue struct {
	Seg int
	Due time.Time
}

// Lookahead lists the segments to prefetch after a request for seg that is
// due at due: the next LookaheadSegments of a rendition of n segments, each
// due when the player, having just received seg, reaches it. dur gives a
// segment's duration. A seek or a rendition switch moves the look-ahead to
// the new position; it never adds to the old one.
func Lookahead(seg int, due time.Time, n int, dur func(seg int) time.Duration) []SegmentDue {
	var out []SegmentDue
	for j := seg + 1; j <= seg+LookaheadSegments && j < n; j++ {
		due = due.Add(dur(j - 1))
		out = append(out, SegmentDue{j, due})
	}
	return out
}

// LiveEdgeDue is when a segment first seen as the newest of a channel
// update, listed at listed with the channel's target duration, becomes due.
func LiveEdgeDue(listed time.Time, target time.Duration) time.Time {
	return listed.Add(time.Duration(LiveEdgeSlack * float64(target)))
}

// LiveStep is what a request for a live segment calls for.
type LiveStep struct {
	// Direct: fetch what is missing straight from the origin now
	// (start-up).
	Direct bool
	// Due: otherwise, when the segment's missing chunks become due (the
	// zero time or a past one: at once). Until then they are left to the
	// swarm.
	Due time.Time
}

// LiveRequest says what a request at now for a live segment calls for:
// edgeDue is the segment's LiveEdgeDue (zero when it was not first seen at
// the edge), served how many segments of the channel the gateway has sent
// so far, and peers how many peers its swarm has connected.
func LiveRequest(now, edgeDue time.Time, served, peers int) LiveStep {
	if served < StartupSegments {
		return LiveStep{Direct: true}
	}
	due := edgeDue
	if peers > 0 { // nobody to wait for otherwise
		if p := now.Add(LiveJoinPatience); p.After(due) {
			due = p
		}
	}
	return LiveStep{Due: due}
}
