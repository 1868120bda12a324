package sim

import (
	"time"

	"github.com/shoal-cdn/shoal/swarm/policy"
)

// A media viewer is two things: a player, which asks for segments one at a
// time in order (the next as soon as the last arrived, while its buffer is
// under media.buffer; a live player also waits for the segment to be
// published), and the peer's gateway, which turns each request into fetch
// decisions by the playback rules in swarm/policy (policy.Playback for on
// demand, policy.LiveRequest for live) — the code the real gateway runs.
// A chunk is one segment, so "a segment's missing chunks" is the chunk.
//
// On demand, the gateway fetches only what the player asks for and the
// look-ahead (from peers, until its deadline is urgent), as the real
// session does. Live, it fetches every segment of the window as it is
// published (the real gateway joins each listed segment's swarm), and a
// request makes the segment due at the time policy.LiveRequest says.

// playback is a viewer's state: the player's buffer (what it really
// plays), its requests, and the gateway rules' state.
type playback struct {
	s0, end  int // first segment watched, one past the last
	pos      int // next segment to play
	started  bool
	joined   time.Duration
	startAt  time.Duration
	nextDue  time.Duration // when segment pos must be held (once started)
	rebuffer time.Duration
	watched  time.Duration
	stopped  bool

	next      int         // next segment the player asks for
	asked     bool        // the player waits for segment next
	step      policy.Step // on demand: what the rules made of that request
	rules     *policy.Playback
	askAt     time.Duration // a scheduled evPlayer, or -1
	served    int           // live: segments sent to the player (policy.LiveRequest)
	joinEdge  int           // live: segments listed when the viewer joined
	originNow map[int]bool  // chunks this viewer's gateway is fetching straight from the origin
}

// newPlayback starts a viewer's playback of segments [s0, end) at now.
func (w *world) newPlayback(s0, end int) *playback {
	p := &playback{joined: w.now, s0: s0, end: end, pos: s0, next: s0, askAt: -1, joinEdge: w.edge, originNow: map[int]bool{}}
	if w.sc.Kind == KindVOD {
		p.rules = policy.NewPlayback(w.t())
	}
	return p
}

// advancePlay plays what is held up to now, and lets the player ask for
// its next segment.
func (w *world) advancePlay(n *node) {
	p := n.play
	if p.stopped {
		return
	}
	seg := w.sc.Media.Segment.D()
	if p.started {
		for p.pos < p.end && p.nextDue <= w.now && n.have.Has(p.pos) {
			p.pos++
			p.nextDue += seg
		}
		if p.pos >= p.end {
			w.q.push(event{at: w.now, kind: evLeave, n: n.id})
			return
		}
	}
	w.ask(n)
}

// ask has the player ask for its next segments while it may: one at a
// time, each once the one before has arrived; live, once published; on
// demand, while its buffer is under media.buffer (else it asks again when
// the buffer has drained to that).
func (w *world) ask(n *node) {
	p := n.play
	for n.alive && !p.stopped && n.picker != nil && p.next < p.end {
		if !p.asked {
			if p.next >= w.edge {
				return // live: not published yet (evProduce asks again)
			}
			if p.rules != nil {
				ahead := p.rules.Clock.Buffered(w.t()) - w.sc.Media.Buffer.D()
				if ahead > 0 {
					if at := w.now + ahead; p.askAt < 0 || p.askAt > at || p.askAt < w.now {
						p.askAt = at
						w.q.push(event{at: at, kind: evPlayer, n: n.id})
					}
					return
				}
			}
			p.asked = true
			w.request(n, p.next)
		}
		if !n.have.Has(p.next) {
			return // arrived() asks again
		}
		w.sent(n, p.next)
	}
}

// request applies the gateway's rules to the player's request for seg.
func (w *world) request(n *node, seg int) {
	p := n.play
	now := w.t()
	if p.rules == nil {
		// Live: the start-up segments come straight from the origin; later
		// ones are left to the swarm until their due time.
		var edgeDue time.Time
		if seg >= p.joinEdge {
			edgeDue = policy.LiveEdgeDue(w.publishedAt(seg), w.sc.Media.Segment.D())
		}
		st := policy.LiveRequest(now, edgeDue, p.served, len(n.conns))
		if w.hooks != nil && w.hooks.liveRequest != nil {
			w.hooks.liveRequest(w, n, seg, st)
		}
		switch due := st.Due.Sub(epoch); {
		case st.Direct:
			w.originDirect(n, seg)
		case due > w.now:
			w.q.push(event{at: due, kind: evDue, n: n.id, seg: int32(seg)})
		default:
			w.prioritize(n, seg, now)
		}
		return
	}
	st := p.rules.Request(now, true)
	p.step = st
	w.want(n, seg, false)
	if w.hooks != nil && w.hooks.request != nil {
		w.hooks.request(w, n, seg, st)
	}
	if st.Direct {
		w.originDirect(n, seg)
	} else {
		w.prioritize(n, seg, st.Due)
		if !n.have.Has(seg) {
			w.q.push(event{at: st.LateAt().Sub(epoch), kind: evLate, n: n.id, seg: int32(seg)})
		}
		w.lookahead(n, seg, st.Due)
	}
}

// sent delivers segment seg, held, to the player.
func (w *world) sent(n *node, seg int) {
	p := n.play
	p.asked = false
	p.next = seg + 1
	p.served++
	if p.rules == nil {
		return
	}
	p.rules.Clock.Delivered(seg, w.sc.Media.Segment.D(), w.t())
	if w.hooks != nil && w.hooks.sent != nil {
		w.hooks.sent(w, n, seg)
	}
	if p.step.Direct && !p.step.More {
		// The last start-up segment is sent: the look-ahead starts.
		w.lookahead(n, seg, p.step.Due)
	}
}

// lookahead prefetches policy.Lookahead's segments after seg from peers
// (the gateway does not know where the viewer will stop; the simulator
// does, and skips what lies past that).
func (w *world) lookahead(n *node, seg int, due time.Time) {
	seglen := w.sc.Media.Segment.D()
	ahead := policy.Lookahead(seg, due, w.chunks, func(int) time.Duration { return seglen })
	if w.hooks != nil && w.hooks.lookahead != nil {
		w.hooks.lookahead(w, n, seg, ahead)
	}
	for _, a := range ahead {
		if a.Seg >= n.play.end {
			break // past what this viewer will watch: counted as held
		}
		w.want(n, a.Seg, true)
		w.prioritize(n, a.Seg, a.Due)
	}
}

// want adds chunk i to n's wanted set, from peers only (a look-ahead) or
// from anyone (a request), as the session's Interests do.
func (w *world) want(n *node, i int, peerOnly bool) {
	if n.want == nil || n.picker == nil {
		return
	}
	if !n.picker.Wanted(i) {
		n.picker.SetWant(i, true)
		n.picker.SetPeerOnly(i, peerOnly)
		n.want.set(i)
	} else if !peerOnly {
		n.picker.SetPeerOnly(i, false)
	}
}

// prioritize gives chunk i the deadline at, unless it has an earlier one,
// as swarm.Session.Prioritize.
func (w *world) prioritize(n *node, i int, at time.Time) {
	if n.picker == nil || n.have.Has(i) || !n.picker.Wanted(i) {
		return
	}
	if cur, ok := n.picker.Deadline(i); !ok || at.Before(cur) {
		n.picker.SetDeadline(i, at)
	}
}

// originDirect fetches chunk i straight from the origin now, bypassing the
// origin lane, as swarm.Session.FetchFromOrigin: one origin request per
// chunk at a time.
func (w *world) originDirect(n *node, i int) {
	if n.have.Has(i) || n.play.originNow[i] || w.sc.Origin.Off || n.cutOff || w.sc.Classes[n.class].NoOrigin {
		return
	}
	w.startOrigin(n, i)
}

// late is a request's late time: what is still missing goes to the origin.
func (w *world) late(n *node, seg int) {
	if n.alive && n.play != nil && !n.play.stopped && n.picker != nil {
		w.originDirect(n, seg)
	}
}

// liveDue is a live request's due time: the segment's deadline is now.
func (w *world) liveDue(n *node, seg int) {
	if n.alive && n.play != nil && !n.play.stopped {
		w.prioritize(n, seg, w.t())
	}
}

// publishedAt is when live segment seg was listed (evProduce).
func (w *world) publishedAt(seg int) time.Time {
	return epoch.Add(time.Duration(seg+1) * w.sc.Media.Segment.D())
}

// arrived updates the buffer when segment i arrives.
func (w *world) arrived(n *node, i int) {
	p := n.play
	if p.stopped {
		return
	}
	delete(p.originNow, i)
	if !p.started {
		for k := p.s0; k < min(p.s0+w.sc.Media.StartSegments, p.end); k++ {
			if !n.have.Has(k) {
				w.advancePlay(n)
				return
			}
		}
		p.started, p.startAt, p.pos, p.nextDue = true, w.now, p.s0, w.now
	} else if i == p.pos && p.nextDue < w.now {
		p.rebuffer += w.now - p.nextDue
		p.nextDue = w.now
	}
	w.advancePlay(n)
}

// stop closes the viewing session at now (leave or end of simulation).
func (p *playback) stop(now time.Duration) {
	if p.stopped {
		return
	}
	p.stopped = true
	if !p.started {
		return
	}
	if p.pos < p.end && p.nextDue < now {
		p.rebuffer += now - p.nextDue
	}
	p.watched = now - p.startAt
}
