package policy

import "math/bits"

// Haver answers whether a peer has chunk i. *Bitset implements it; HasFunc
// adapts a plain function (for example over the wire package's bitfield).
type Haver interface {
	Has(i int) bool
}

// HasFunc adapts a function to Haver.
type HasFunc func(i int) bool

// Has calls f(i).
func (f HasFunc) Has(i int) bool { return f(i) }

// Bitset is a fixed-size set of chunk indexes in [0, Len()).
type Bitset struct {
	w []uint64
	n int
}

var _ Haver = (*Bitset)(nil)

// NewBitset returns an empty set over n chunks.
func NewBitset(n int) *Bitset {
	if n < 0 {
		n = 0
	}
	return &Bitset{w: make([]uint64, (n+63)/64), n: n}
}

// Len is the number of chunks the set ranges over.
func (b *Bitset) Len() int {
	if b == nil {
		return 0
	}
	return b.n
}

// Has reports whether i is in the set; out-of-range indexes are never in it,
// so a nil or short bitfield from a peer reads as "doesn't have".
func (b *Bitset) Has(i int) bool {
	if b == nil || i < 0 || i >= b.n {
		return false
	}
	return b.w[i>>6]&(1<<(uint(i)&63)) != 0
}

// Set adds i; out-of-range indexes are ignored.
func (b *Bitset) Set(i int) {
	if i < 0 || i >= b.n {
		return
	}
	b.w[i>>6] |= 1 << (uint(i) & 63)
}

// Clear removes i; out-of-range indexes are ignored.
func (b *Bitset) Clear(i int) {
	if i < 0 || i >= b.n {
		return
	}
	b.w[i>>6] &^= 1 << (uint(i) & 63)
}

// SetAll adds every index.
func (b *Bitset) SetAll() {
	for i := range b.w {
		b.w[i] = ^uint64(0)
	}
	if r := b.n & 63; r != 0 {
		b.w[len(b.w)-1] = 1<<uint(r) - 1
	}
}

// Count is the number of indexes in the set.
func (b *Bitset) Count() int {
	if b == nil {
		return 0
	}
	c := 0
	for _, w := range b.w {
		c += bits.OnesCount64(w)
	}
	return c
}

// NextSet returns the smallest index >= i in the set, or -1.
func (b *Bitset) NextSet(i int) int {
	if b == nil || i >= b.n {
		return -1
	}
	if i < 0 {
		i = 0
	}
	k := i >> 6
	w := b.w[k] >> (uint(i) & 63)
	if w != 0 {
		return i + bits.TrailingZeros64(w)
	}
	for k++; k < len(b.w); k++ {
		if b.w[k] != 0 {
			return k<<6 + bits.TrailingZeros64(b.w[k])
		}
	}
	return -1
}
