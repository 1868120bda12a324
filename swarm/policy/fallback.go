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
//   - Before that, while the session has requested and received nothing
//     and has no deadlines, one chunk no peer has: the starter, the one
//     this peer ranks best for in origin designations (see starter). It
//     gives a newcomer its first verified bytes at once instead of after
//     the grace, at the cost of at most one chunk a peer might have
//     served: a flash crowd's peers draw different chunks, most likely
//     each one it is designated for anyway.
//
// In ModeOff (SetMode) no peer counts: every wanted chunk is treated as
// one no connected peer has and the grace as over, so the deadline chunks
// come first, earliest first, then every other wanted missing chunk not in
// flight, in ascending order; peer-only chunks still wait until urgent.
//
// Cost: O(deadline chunks + chunks no peer has); in ModeOff O(chunks).
func (p *Picker) OriginFallback(now time.Time, max int) []int {
	if p.start.IsZero() {
		p.start = now
	}
	off := !p.mode.FetchFromPeers()
	graceOver := off || !now.Before(p.start.Add(p.cfg.Grace))
	full := func(out []int) bool { return max > 0 && len(out) >= max }
	count := p.avail.Count
	if off {
		count = func(int) int { return 0 }
	}

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
		case count(i) == 0:
			if urgent || graceOver && !p.peerOnly[i] {
				out = append(out, i)
			}
		case urgent && (f == nil || !p.onTime(i, f, d.at, now)):
			out = append(out, i)
		}
	}
	if full(out) {
		return out
	}
	if !graceOver {
		if len(out) == 0 {
			if i := p.starter(); i >= 0 {
				out = append(out, i)
			}
		}
		return out
	}
	var rest []int
	if off {
		// Pickable chunks (wanted, missing, published, not in flight, no
		// deadline) in ascending order, whoever holds them.
		for i := 0; i < p.edge && (max <= 0 || len(out)+len(rest) < max); i++ {
			if p.avail.pickable(i) && !p.peerOnly[i] {
				rest = append(rest, i)
			}
		}
	} else {
		p.avail.eachUnavailable(func(i int) {
			if !p.peerOnly[i] {
				rest = append(rest, i)
			}
		})
		slices.Sort(rest)
	}
	for _, i := range rest {
		if full(out) {
			break
		}
		out = append(out, i)
	}
	return out
}

// starter returns the chunk for the origin to start a session with (see
// OriginFallback): among the chunks no peer has, the one this peer ranks
// best for in origin designations (OriginRank with PickerConfig.Self).
// That is most likely a chunk this peer is designated for anyway, and
// peers of a flash crowd draw different ones. -1 once the session has
// requested or received something, or while it has deadlines: a player's
// start-up is the deadline lane's (and the gateway's direct start-up
// fetches'), and a starter there would make every joining viewer take its
// first segment from the origin rather than from the neighbours it is
// about to meet. Cost: O(chunks no peer has), only until the session is
// primed.
func (p *Picker) starter() int {
	if p.primed || len(p.due) > 0 {
		return -1
	}
	best, rank := -1, uint64(0)
	p.avail.eachUnavailable(func(i int) {
		if r := OriginRank(p.cfg.Self, i); !p.peerOnly[i] && (best < 0 || r < rank) {
			best, rank = i, r
		}
	})
	return best
}

// AssistPick returns the chunk an origin-assist slot should fetch (a peer
// that spends origin capacity beyond its designated share, to finish
// sooner): among the wanted chunks we lack that nobody is fetching for us
// and skip does not exclude, the rarest among the connected peers, so that
// what the origin sends is what the swarm can least supply and most wants
// passed on; ties go by OriginRank(self, chunk), so peers that start
// together ask the origin for different chunks rather than the same first
// ones. -1: none, and none either before the grace period is over: the
// swarm's newcomers' first chunks (OriginFallback's starters) must not share
// the origin with assist fetches — a peer cannot tell when the others' have
// arrived. Cost: O(chunks).
func (p *Picker) AssistPick(now time.Time, self uint64, skip func(i int) bool) int {
	if p.start.IsZero() || now.Before(p.start.Add(p.cfg.Grace)) {
		return -1
	}
	best, bestCount, bestRank := -1, 0, uint64(0)
	for i := range min(p.edge, p.cfg.Chunks) {
		if p.have.Has(i) || !p.want.Has(i) || p.InFlightTo(i) > 0 || skip != nil && skip(i) {
			continue
		}
		n, r := p.avail.Count(i), OriginRank(self, i)
		if best < 0 || n < bestCount || n == bestCount && r < bestRank {
			best, bestCount, bestRank = i, n, r
		}
	}
	return best
}
