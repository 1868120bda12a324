package policy

import (
	"cmp"
	"slices"
	"time"
)

// Source is the peer Next picks requests for.
type Source struct {
	Key PeerKey
	// Has is the peer's bitfield (plus HAVEs).
	Has Haver
	// Rate is the measured rate at which we receive from this peer, in
	// bytes/s; <= 0 if not measured yet (PickerConfig.AssumedRate is used).
	Rate float64
	// Better, if set, holds the chunks that a source the caller prefers to
	// src (a better-scored peer, see Reputation) holds and could be asked
	// for: the background lane leaves those to it. The deadline lane and
	// end-game ignore it, since there a late chunk costs more than a
	// distrusted source.
	Better Haver
}

// without is a Haver of the chunks a has and b does not.
type without struct{ a, b Haver }

func (w without) Has(i int) bool { return w.a.Has(i) && !w.b.Has(i) }

// Next returns up to max chunks to request from src now, in the order to
// request them. It does not record them: call Requested for each one sent.
// It picks from three lanes, in this order:
//
//  1. Deadline lane: chunks with a deadline, earliest deadline first, that
//     src has and that are not already in flight to a source expected to
//     deliver them by their deadline (a request to Origin always counts as
//     on time). A chunk is taken only if src is expected to deliver it by its
//     deadline: the request would queue behind src's outstanding requests,
//     each taking ChunkSize/rate (see ExpectedArrival). Chunks src is too
//     slow for are left for a faster peer or OriginFallback — unless the
//     chunk's last origin request failed: then a late peer beats none.
//  2. Background lane: the rarest chunks src has that are wanted, missing,
//     not in flight and not in the deadline lane; ties broken randomly. (With
//     PickerConfig.Order = Sequential: the lowest-index such chunks.) Chunks
//     in src.Better are left to the better source.
//  3. End-game: only when every wanted missing chunk is in flight, duplicate
//     requests for in-flight chunks src has and was not asked for (and not
//     already fetched from the origin) that have fewer than
//     EndGameMaxRequests requests out and are either overdue (see late) or
//     (chunks without a deadline) expected from src, with one of src's
//     chunk times to spare, before any source they are requested from
//     starts sending them (see races): a request queued at a slow uploader
//     is raced by a faster one instead of holding the download's last
//     chunks for seconds. A chunk with a deadline has the deadline lane for
//     that, which duplicates it once its flight would miss it. Fewest
//     outstanding requests first, then oldest. Received then reports the
//     duplicates to cancel.
//
// In a mode that does not fetch from peers (SetMode(ModeOff)) it picks
// nothing.
//
// Cost: O(deadline chunks) + O(chunks inspected by the rarest-first walk,
// which stops at max) + O(in-flight chunks) in end-game only.
func (p *Picker) Next(now time.Time, src Source, max int) []int {
	if max <= 0 || src.Has == nil || p.missing == 0 || !p.mode.FetchFromPeers() {
		return nil
	}
	var ps *peerState
	if src.Rate > 0 && src.Key != Origin {
		ps = p.peer(src.Key)
		ps.rate = src.Rate
	} else {
		ps = p.peers[src.Key]
	}
	out := make([]int, 0, max)

	queued := 0
	if ps != nil {
		queued = len(ps.chunks)
	}
	for _, d := range p.due {
		if len(out) == max {
			return out
		}
		i := d.chunk
		if i >= p.edge || !src.Has.Has(i) {
			continue
		}
		if f := p.flights[i]; f != nil && (f.requestedFrom(src.Key) || p.onTime(i, f, d.at, now)) {
			continue
		}
		if p.eta(ps, queued, now).After(d.at) && !p.originFailed[i] {
			continue // too slow: leave it to a faster peer or the origin
		}
		out = append(out, i)
		queued++
	}

	if len(out) < max {
		h := src.Has
		if src.Better != nil {
			h = without{src.Has, src.Better}
		}
		if p.cfg.Order == Sequential {
			out = p.sequential(h, max, out)
		} else {
			out = p.avail.Rarest(h, max-len(out), p.rnd, out)
		}
	}
	if len(out) < max && p.EndGame() {
		out = p.endGame(now, src, ps, max, out)
	}
	return out
}

// sequential appends the lowest-index pickable chunks h has, up to max in
// out. O(chunks from the first missing one).
func (p *Picker) sequential(h Haver, max int, out []int) []int {
	for p.seqFrom < p.cfg.Chunks && p.have.Has(p.seqFrom) {
		p.seqFrom++
	}
	for i := p.seqFrom; i < p.edge && len(out) < max; i++ {
		if !p.avail.out.Has(i) && p.avail.count[i] > 0 && h.Has(i) {
			out = append(out, i)
		}
	}
	return out
}

// endGame appends end-game duplicates for src (ps: its state, nil if it
// has none) to out, up to max (see Next).
func (p *Picker) endGame(now time.Time, src Source, ps *peerState, max int, out []int) []int {
	// When a duplicate from src would arrive, queued behind its outstanding
	// requests and those picked for it above, with one of its chunk times
	// to spare; an unmeasured source (AssumedRate) does not race on a
	// guess.
	var arrive time.Time
	measured := ps != nil && ps.rate > 0
	if measured {
		arrive = p.eta(ps, len(ps.chunks)+len(out), now).Add(p.chunkTime(ps))
	}
	type cand struct {
		chunk, reqs int
		first       time.Time
	}
	var cands []cand
	for _, i := range p.flightList {
		f := p.flights[i]
		_, due := p.dueAt[i]
		if !due && !p.want.Has(i) {
			continue // an unwanted chunk's request just finishes
		}
		if !src.Has.Has(i) || f.requestedFrom(src.Key) || f.requestedFrom(Origin) || slices.Contains(out, i) {
			continue
		}
		// Duplicate only what is overdue or not started yet at a slower
		// source, and at most EndGameMaxRequests ways: with deep pipelines
		// every missing chunk is in flight early, and duplicating all of
		// them would waste upload on copies.
		if len(f.reqs) >= p.cfg.EndGameMaxRequests {
			continue
		}
		// A chunk with a deadline is raced only once overdue: the deadline
		// lane already duplicates it when its flight would miss the
		// deadline, and finishing it sooner than that buys nothing.
		if !p.late(i, f, now) && (due || !measured || !p.races(i, f, arrive, now)) {
			continue
		}
		cands = append(cands, cand{chunk: i, reqs: len(f.reqs), first: f.reqs[0].at})
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if c := cmp.Compare(a.reqs, b.reqs); c != 0 {
			return c
		}
		if c := a.first.Compare(b.first); c != 0 {
			return c
		}
		return a.chunk - b.chunk
	})
	for _, c := range cands {
		if len(out) == max {
			break
		}
		out = append(out, c.chunk)
	}
	return out
}

// maxChunkTime caps a per-chunk transfer time so a near-zero rate can't
// overflow time.Duration; anything this slow misses every deadline anyway.
const maxChunkTime = 24 * time.Hour

// chunkTime is how long one chunk takes from ps at its measured rate.
func (p *Picker) chunkTime(ps *peerState) time.Duration {
	rate := p.cfg.AssumedRate
	if ps != nil && ps.rate > 0 {
		rate = ps.rate
	}
	secs := float64(p.cfg.ChunkSize) / rate
	if secs >= maxChunkTime.Seconds() {
		return maxChunkTime
	}
	return time.Duration(secs * float64(time.Second))
}

// eta is the expected arrival of the request at position k (0 = head) of
// ps's queue, k == len(queue) being a request not yet sent. The model: the
// peer serves its queue in order at its measured rate, one ChunkSize per
// chunk time; the head started being served when it was requested or when
// the previous chunk arrived, whichever is later. A head that is already
// overdue is assumed to need one more full chunk time: being late is
// evidence the measured rate is stale, and erring late sends a deadline
// chunk to a faster source rather than letting it miss.
func (p *Picker) eta(ps *peerState, k int, now time.Time) time.Time {
	per := p.chunkTime(ps)
	if ps == nil || len(ps.chunks) == 0 {
		return now.Add(time.Duration(k+1) * per)
	}
	begin := ps.at[0]
	if ps.lastDone.After(begin) {
		begin = ps.lastDone
	}
	head := begin.Add(per)
	if head.Before(now) {
		head = now.Add(per)
	}
	return head.Add(time.Duration(k) * per)
}

// late reports whether every outstanding peer request of a flight is past
// its expected arrival by more than one chunk time: the peer serves its queue
// in order at its measured rate from when its current head started.
func (p *Picker) late(i int, f *flight, now time.Time) bool {
	for _, r := range f.reqs {
		ps := p.peers[r.peer]
		if r.peer == Origin || ps == nil {
			return false
		}
		k := slices.Index(ps.chunks, i)
		if k < 0 {
			continue
		}
		per := p.chunkTime(ps)
		begin := ps.at[0]
		if ps.lastDone.After(begin) {
			begin = ps.lastDone
		}
		if !now.After(begin.Add(time.Duration(k+2) * per)) {
			return false
		}
	}
	return true
}

// races reports whether a duplicate request for in-flight chunk i (flight
// f) arriving at arrive would beat every source i is requested from to the
// start of its sending. A source sends one chunk to us at a time, in the
// order asked, so a request behind others at a slow source has not
// started: the race costs nothing when Received cancels it, while the head
// of a queue, being sent, is raced only once it is overdue (late). The
// margin endGame puts into arrive keeps sources of about the same speed
// from racing each other on noise in their measured rates. A chunk
// requested from the origin is never raced (its requests are not
// modelled).
func (p *Picker) races(i int, f *flight, arrive, now time.Time) bool {
	raced := false
	for _, r := range f.reqs {
		h := p.peers[r.peer]
		if r.peer == Origin || h == nil {
			return false
		}
		k := slices.Index(h.chunks, i)
		if k < 0 {
			continue
		}
		// The holder starts sending it one of its chunk times before it
		// is expected to arrive.
		if start := p.eta(h, k, now).Add(-p.chunkTime(h)); !arrive.Before(start) {
			return false
		}
		raced = true
	}
	return raced
}

// onTime reports whether some outstanding request for chunk i is expected
// by deadline. The origin is trusted to be on time.
func (p *Picker) onTime(i int, f *flight, deadline, now time.Time) bool {
	for _, r := range f.reqs {
		if r.peer == Origin {
			return true
		}
		ps := p.peers[r.peer]
		if ps == nil {
			continue
		}
		if k := slices.Index(ps.chunks, i); k >= 0 && !p.eta(ps, k, now).After(deadline) {
			return true
		}
	}
	return false
}

// ExpectedArrival is the earliest time chunk i is expected from the peers
// it is requested from, by the model described at Picker.Next. ok is false
// if no peer has a request for i outstanding (requests to Origin are not
// modelled).
func (p *Picker) ExpectedArrival(i int, now time.Time) (t time.Time, ok bool) {
	f := p.flights[i]
	if f == nil {
		return time.Time{}, false
	}
	for _, r := range f.reqs {
		ps := p.peers[r.peer]
		if r.peer == Origin || ps == nil {
			continue
		}
		if k := slices.Index(ps.chunks, i); k >= 0 {
			if e := p.eta(ps, k, now); !ok || e.Before(t) {
				t, ok = e, true
			}
		}
	}
	return t, ok
}
