package policy

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// ErrChunkRange reports a chunk index outside [0, n), typically from a
// misbehaving peer's HAVE.
var ErrChunkRange = errors.New("policy: chunk index out of range")

// Availability counts, for every chunk, how many connected peers have it, and
// keeps the chunks we still want to pick sorted by that count so "the rarest
// chunk this peer has" is found without scanning everything.
//
// The layout is libtorrent's piece picker: one array, order, holds every
// chunk index; the pickable ones come first, grouped in buckets of equal
// count (bucket c is order[start[c]:start[c+1]]), and the excluded ones
// (already have, in flight, or handled by the deadline lane) sit after
// start[B]. A count change moves a chunk one bucket by swapping it with the
// bucket's edge, so AddHave and RemoveHave are O(1); excluding or
// re-including a chunk walks it across the buckets, O(number of buckets) =
// O(connected peers). Counts of excluded chunks are still tracked, they just
// don't move in order.
type Availability struct {
	count []int32
	order []int32 // chunk indexes: pickable ones bucketed by count, then excluded ones
	pos   []int32 // pos[i] is i's index in order
	start []int32 // bucket boundaries; len = buckets+1, last = number of pickable chunks
	out   *Bitset // excluded chunks
}

// NewAvailability returns counts of zero for n chunks, all pickable.
func NewAvailability(n int) *Availability {
	a := &Availability{
		count: make([]int32, n),
		order: make([]int32, n),
		pos:   make([]int32, n),
		start: []int32{0, int32(n)},
		out:   NewBitset(n),
	}
	for i := range n {
		a.order[i] = int32(i)
		a.pos[i] = int32(i)
	}
	return a
}

// Len is the number of chunks.
func (a *Availability) Len() int { return len(a.count) }

// Count is how many connected peers have chunk i (0 if out of range).
func (a *Availability) Count(i int) int {
	if i < 0 || i >= len(a.count) {
		return 0
	}
	return int(a.count[i])
}

// AddHave records that one more connected peer has chunk i (a HAVE message).
func (a *Availability) AddHave(i int) error {
	if i < 0 || i >= len(a.count) {
		return fmt.Errorf("have %d of %d chunks: %w", i, len(a.count), ErrChunkRange)
	}
	a.inc(i)
	return nil
}

// RemoveHave records that a peer no longer has chunk i (evicted it). A count
// never goes below zero: a caller that removes more than it added has a bug,
// but clamping keeps that bug from corrupting the bucket order.
func (a *Availability) RemoveHave(i int) error {
	if i < 0 || i >= len(a.count) {
		return fmt.Errorf("remove have %d of %d chunks: %w", i, len(a.count), ErrChunkRange)
	}
	a.dec(i)
	return nil
}

// AddBitfield adds a newly connected peer's chunks. O(n), once per peer.
func (a *Availability) AddBitfield(h Haver) { a.eachIn(h, a.inc) }

// RemoveBitfield removes a departed peer's chunks; pass the same set that was
// added plus any HAVEs since.
func (a *Availability) RemoveBitfield(h Haver) { a.eachIn(h, a.dec) }

func (a *Availability) eachIn(h Haver, f func(int)) {
	if b, ok := h.(*Bitset); ok {
		for i := b.NextSet(0); i >= 0 && i < len(a.count); i = b.NextSet(i + 1) {
			f(i)
		}
		return
	}
	for i := range a.count {
		if h.Has(i) {
			f(i)
		}
	}
}

// Rarest appends to dst up to max pickable chunks that h has, rarest first
// (lowest count; chunks no peer has are never returned), breaking ties among
// equally rare chunks randomly with r (nil r: bucket order). It costs
// O(chunks inspected): it stops as soon as max are found.
func (a *Availability) Rarest(h Haver, max int, r *rand.Rand, dst []int) []int {
	found := 0
	for b := 1; b+1 < len(a.start) && found < max; b++ {
		lo, size := int(a.start[b]), int(a.start[b+1]-a.start[b])
		if size == 0 {
			continue
		}
		// Walk the bucket from a random offset with a random stride coprime
		// to its size: every member is visited once, in an order that
		// depends on r, without shuffling or allocating.
		off, stride := 0, 1
		if r != nil && size > 1 {
			off = r.IntN(size)
			stride = 1 + r.IntN(size-1)
			for gcd(stride, size) != 1 {
				stride++
			}
		}
		p := off
		for k := 0; k < size && found < max; k++ {
			i := int(a.order[lo+p])
			if h.Has(i) {
				dst = append(dst, i)
				found++
			}
			if p += stride; p >= size {
				p -= size
			}
		}
	}
	return dst
}

// eachUnavailable calls f for every pickable chunk that no connected peer has.
func (a *Availability) eachUnavailable(f func(i int)) {
	for _, i := range a.order[a.start[0]:a.start[1]] {
		f(int(i))
	}
}

// pickable reports whether chunk i is in the pickable order (not excluded
// as held, in flight or in the deadline lane).
func (a *Availability) pickable(i int) bool { return !a.out.Has(i) }

func gcd(x, y int) int {
	for y != 0 {
		x, y = y, x%y
	}
	return x
}

func (a *Availability) swap(p, q int32) {
	x, y := a.order[p], a.order[q]
	a.order[p], a.order[q] = y, x
	a.pos[x], a.pos[y] = q, p
}

// grow makes sure bucket c exists.
func (a *Availability) grow(c int32) {
	for int32(len(a.start)-1) <= c {
		a.start = append(a.start, a.start[len(a.start)-1])
	}
}

func (a *Availability) inc(i int) {
	c := a.count[i]
	a.count[i]++
	if a.out.Has(i) {
		return
	}
	a.grow(c + 1)
	// Swap to the last slot of bucket c, then shrink bucket c+1's start onto it.
	a.swap(a.pos[i], a.start[c+1]-1)
	a.start[c+1]--
}

func (a *Availability) dec(i int) {
	c := a.count[i]
	if c == 0 {
		return
	}
	a.count[i]--
	if a.out.Has(i) {
		return
	}
	// Swap to the first slot of bucket c, then move bucket c's start past it.
	a.swap(a.pos[i], a.start[c])
	a.start[c]++
}

// exclude takes i out of the pickable order (have, in flight, deadline lane).
func (a *Availability) exclude(i int) {
	if a.out.Has(i) {
		return
	}
	a.out.Set(i)
	top := int32(len(a.start) - 1)
	for b := a.count[i]; b < top; b++ {
		a.swap(a.pos[i], a.start[b+1]-1)
		a.start[b+1]--
	}
}

// include puts an excluded chunk back into its bucket.
func (a *Availability) include(i int) {
	if !a.out.Has(i) {
		return
	}
	a.out.Clear(i)
	c := a.count[i]
	a.grow(c)
	top := int32(len(a.start) - 1)
	a.swap(a.pos[i], a.start[top])
	a.start[top]++
	for b := top - 1; b > c; b-- {
		a.swap(a.pos[i], a.start[b])
		a.start[b]++
	}
}
