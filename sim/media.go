package sim

import "time"

// playback is a viewer's buffer model: playback starts once StartSegments
// segments from s0 are held; each segment then plays for Segment; if the
// next one is missing when due, playback stalls until it arrives.
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
}

// due is when segment k must be held: before playback starts, as soon as
// possible (one segment after joining, the next one after that, ...).
func (w *world) due(p *playback, k int) time.Duration {
	seg := w.sc.Media.Segment.D()
	if !p.started {
		return p.joined + time.Duration(k-p.s0+1)*seg
	}
	return p.nextDue + time.Duration(k-p.pos)*seg
}

// advancePlay plays what is held up to now and refreshes the picker's
// deadlines for the segments due within Lookahead, as the gateway does for
// what the player reads next.
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
	if n.picker == nil {
		return
	}
	edge := n.picker.Edge()
	for k := p.pos; k < p.end && k < edge; k++ {
		d := w.due(p, k)
		if d-w.now > w.sc.Media.Lookahead.D() {
			break
		}
		if n.have.Has(k) {
			continue
		}
		at := epoch.Add(d)
		if cur, ok := n.picker.Deadline(k); !ok || !cur.Equal(at) {
			n.picker.SetDeadline(k, at)
		}
	}
}

// arrived updates the buffer when segment i arrives.
func (w *world) arrived(n *node, i int) {
	p := n.play
	if p.stopped {
		return
	}
	if !p.started {
		for k := p.s0; k < min(p.s0+w.sc.Media.StartSegments, p.end); k++ {
			if !n.have.Has(k) {
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
