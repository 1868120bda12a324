package policy

import (
	"slices"
	"time"
)

// OriginFallback returns the chunks that must be fetched from the origin now,
// at most max of them (max <= 0: all). Call it after offering the deadline
// lane to the unchoking peers with Next, and record each chunk fetched with
// Requested(i, Origin, now) so it is not returned again.
//
// The policy, so that the origin serves only what the swarm cannot:
//
//   - A chunk already requested from the origin is never returned.
//   - Deadline chunks, earliest deadline first. A deadline chunk is urgent
//     once now >= deadline - Margin. It goes to the origin when
//     (a) no connected peer has it (Availability count 0) and it is urgent or
//     the grace period is over — before that, peers may still be announcing
//     what they have (a peer-only chunk, SetPeerOnly: urgent only); or
//     (b) it is urgent and no outstanding peer request for it is expected to
//     arrive by the deadline (ExpectedArrival from that peer's measured rate
//     and queue; not requested at all counts as not expected). A request
//     that is on track is left alone, however close the deadline.
//   - Then, once the grace period (Grace after Start) is over, every other
//     wanted missing chunk that no connected peer has, that is not in flight
//     and not peer-only, in ascending index order so the origin fetcher can
//     coalesce ranges.
//
// Cost: O(deadline chunks + chunks no peer has).
func (p *Picker) OriginFallback(now time.Time, max int) []int {
	if p.start.IsZero() {
		p.start = now
	}
	graceOver := !now.Before(p.start.Add(p.cfg.Grace))
	full := func(out []int) bool { return max > 0 && len(out) >= max }

	var out []int
	for _, d := range p.due {
		if full(out) {
			return out
		}
		i, f := d.chunk, p.flights[d.chunk]
		if i >= p.edge || f != nil && f.requestedFrom(Origin) {
			continue
		}
		urgent := !now.Before(d.at.Add(-p.cfg.Margin))
		switch {
		case p.avail.Count(i) == 0:
			if urgent || graceOver && !p.peerOnly[i] {
				out = append(out, i)
			}
		case urgent && (f == nil || !p.onTime(i, f, d.at, now)):
			out = append(out, i)
		}
	}
	if !graceOver || full(out) {
		return out
	}
	var rest []int
	p.avail.eachUnavailable(func(i int) {
		if !p.peerOnly[i] {
			rest = append(rest, i)
		}
	})
	slices.Sort(rest)
	for _, i := range rest {
		if full(out) {
			break
		}
		out = append(out, i)
	}
	return out
}
