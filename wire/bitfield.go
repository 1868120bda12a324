package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Bitfield is a fixed-length set of chunk indexes: which chunks of a content
// a peer has. It is the wire's bitfield and also the swarm picker's, so the
// two never disagree on layout. Bit i is byte i/8 under mask 0x80>>(i%8).
//
// A nil *Bitfield is a valid empty bitfield of length 0 for every read
// method. A Bitfield is not safe for concurrent use.
type Bitfield struct {
	b     []byte
	n     int
	count int // set bits, kept current so Count is O(1) for the picker
}

// NewBitfield returns an all-clear bitfield of n bits. It panics if n is
// negative or above MaxBitfield, like make does for a bad length: n comes
// from a verified manifest, never from a peer.
func NewBitfield(n int) *Bitfield {
	if n < 0 || n > MaxBitfield {
		panic(fmt.Sprintf("wire: NewBitfield(%d): want 0..%d", n, MaxBitfield))
	}
	return &Bitfield{b: make([]byte, (n+7)/8), n: n}
}

// BitfieldFromBytes returns a bitfield of n bits holding a copy of b. It
// rejects with ErrMalformed an n outside 0..MaxBitfield, a b whose length is
// not ceil(n/8), and set spare bits, so each bitfield has one encoding.
func BitfieldFromBytes(b []byte, n int) (*Bitfield, error) {
	if n < 0 || n > MaxBitfield {
		return nil, fmt.Errorf("%w: bitfield of %d bits, max %d", ErrMalformed, n, MaxBitfield)
	}
	if len(b) != (n+7)/8 {
		return nil, fmt.Errorf("%w: bitfield of %d bits in %d bytes, want %d", ErrMalformed, n, len(b), (n+7)/8)
	}
	if r := n % 8; r != 0 && b[len(b)-1]&(0xff>>r) != 0 {
		return nil, fmt.Errorf("%w: bitfield of %d bits has spare bits set", ErrMalformed, n)
	}
	return &Bitfield{b: bytes.Clone(b), n: n, count: popCount(b)}, nil
}

func popCount(b []byte) int {
	c := 0
	for len(b) >= 8 {
		c += bits.OnesCount64(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	for _, x := range b {
		c += bits.OnesCount8(x)
	}
	return c
}

// Len returns the number of bits.
func (f *Bitfield) Len() int {
	if f == nil {
		return 0
	}
	return f.n
}

// Count returns the number of set bits.
func (f *Bitfield) Count() int {
	if f == nil {
		return 0
	}
	return f.count
}

// Complete reports whether every bit is set (true for length 0).
func (f *Bitfield) Complete() bool { return f.Count() == f.Len() }

// Has reports whether bit i is set; false for i out of range, so a peer's
// index can be tested before it is validated.
func (f *Bitfield) Has(i int) bool {
	if i < 0 || i >= f.Len() {
		return false
	}
	return f.b[i>>3]&(0x80>>(i&7)) != 0
}

// Set sets bit i and reports whether it was clear. It panics if i is out of
// range: callers check peer-supplied indexes against Len first.
func (f *Bitfield) Set(i int) bool {
	f.check(i)
	m := byte(0x80 >> (i & 7))
	if f.b[i>>3]&m != 0 {
		return false
	}
	f.b[i>>3] |= m
	f.count++
	return true
}

// Clear clears bit i and reports whether it was set. It panics if i is out of range.
func (f *Bitfield) Clear(i int) bool {
	f.check(i)
	m := byte(0x80 >> (i & 7))
	if f.b[i>>3]&m == 0 {
		return false
	}
	f.b[i>>3] &^= m
	f.count--
	return true
}

// SetAll sets every bit, as a seeder's bitfield has.
func (f *Bitfield) SetAll() {
	if f.Len() == 0 {
		return
	}
	for i := range f.b {
		f.b[i] = 0xff
	}
	if r := f.n % 8; r != 0 {
		f.b[len(f.b)-1] = 0xff << (8 - r)
	}
	f.count = f.n
}

func (f *Bitfield) check(i int) {
	if i < 0 || i >= f.Len() {
		panic(fmt.Sprintf("wire: bit %d out of range of a %d-bit bitfield", i, f.Len()))
	}
}

// Bytes returns a copy of the encoded bits, ceil(Len/8) bytes.
func (f *Bitfield) Bytes() []byte {
	if f == nil {
		return []byte{}
	}
	return bytes.Clone(f.b)
}

// Clone returns an independent copy; nil clones to an empty bitfield.
func (f *Bitfield) Clone() *Bitfield {
	if f == nil {
		return &Bitfield{b: []byte{}}
	}
	return &Bitfield{b: bytes.Clone(f.b), n: f.n, count: f.count}
}

// Equal reports whether f and g have the same length and bits.
func (f *Bitfield) Equal(g *Bitfield) bool {
	if f.Len() != g.Len() || f.Count() != g.Count() {
		return false
	}
	return f.Len() == 0 || bytes.Equal(f.b, g.b)
}

// String renders the bitfield as "count/len", for logs.
func (f *Bitfield) String() string { return fmt.Sprintf("%d/%d", f.Count(), f.Len()) }

// Bitfield forms on the wire, the byte after the bit count.
const (
	// bitsRaw: ceil(count/8) bytes (Bitfield.Bytes).
	bitsRaw = 0
	// bitsRuns: the lengths of the bitfield's runs as uvarints, alternately
	// clear and set bits, starting with clear; only the first may be 0.
	bitsRuns = 1
)

// runsLen is the length of f's runs form, and whether it is shorter than
// the raw form (the one sent then); it stops counting once it is not.
func runsLen(f *Bitfield) (int, bool) {
	raw := (f.Len() + 7) / 8
	k := 0
	for r := range f.runs() {
		if k += uvarintLen(uint64(r)); k >= raw {
			return k, false
		}
	}
	return k, k < raw
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// runs yields the lengths of f's runs: clear bits first (possibly none),
// then set, then clear, and so on to the end.
func (f *Bitfield) runs() func(func(int) bool) {
	return func(yield func(int) bool) {
		set := false
		for i := 0; i < f.Len(); set = !set {
			j := f.nextChange(i, set)
			if !yield(j - i) {
				return
			}
			i = j
		}
	}
}

// nextChange returns the first index from i whose bit is not set (or Len):
// the end of the run of set (or clear) bits at i. It looks at a byte at a
// time, and skips the run's whole bytes.
func (f *Bitfield) nextChange(i int, set bool) int {
	run := byte(0)
	if set {
		run = 0xff
	}
	for i < f.n {
		j := i >> 3
		// The bits of byte j from i on that differ from the run. The
		// last byte's spare bits are clear: they end a run of set bits
		// at Len at the latest.
		if x := (f.b[j] ^ run) & (0xff >> (i & 7)); x != 0 {
			return min(j<<3+bits.LeadingZeros8(x), f.n)
		}
		run64 := uint64(0)
		if set {
			run64 = ^run64
		}
		for j++; j+8 <= len(f.b) && binary.LittleEndian.Uint64(f.b[j:]) == run64; j += 8 {
		}
		for ; j < len(f.b) && f.b[j] == run; j++ {
		}
		i = j << 3
	}
	return f.n
}

// setRun sets bits [i, j), all clear before.
func (f *Bitfield) setRun(i, j int) {
	f.count += j - i
	for ; i < j && i&7 != 0; i++ {
		f.b[i>>3] |= 0x80 >> (i & 7)
	}
	for ; i+8 <= j; i += 8 {
		f.b[i>>3] = 0xff
	}
	for ; i < j; i++ {
		f.b[i>>3] |= 0x80 >> (i & 7)
	}
}

func bitfieldLen(f *Bitfield) int {
	if k, ok := runsLen(f); ok {
		return 5 + k
	}
	return 5 + (f.Len()+7)/8
}

// appendBitfield appends f in the shorter of its two forms (raw when they
// tie), so each bitfield has one encoding.
func appendBitfield(b []byte, f *Bitfield) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(f.Len()))
	if _, ok := runsLen(f); ok {
		b = append(b, bitsRuns)
		for r := range f.runs() {
			b = binary.AppendUvarint(b, uint64(r))
		}
		return b
	}
	b = append(b, bitsRaw)
	if f == nil {
		return b
	}
	return append(b, f.b...)
}

// decodeBitfield decodes a bitfield that must fill p exactly, in the form
// appendBitfield would have chosen.
func decodeBitfield(p []byte) (*Bitfield, error) {
	if len(p) < 5 {
		return nil, fmt.Errorf("%w: bitfield truncated to %d bytes", ErrMalformed, len(p))
	}
	n := binary.BigEndian.Uint32(p)
	if n > MaxBitfield {
		return nil, fmt.Errorf("%w: bitfield of %d bits, max %d", ErrMalformed, n, MaxBitfield)
	}
	form, p := p[4], p[5:]
	raw := (int(n) + 7) / 8
	switch form {
	case bitsRaw:
		f, err := BitfieldFromBytes(p, int(n))
		if err != nil {
			return nil, err
		}
		if k, ok := runsLen(f); ok {
			return nil, fmt.Errorf("%w: raw bitfield of %d bytes whose runs take %d: not canonical", ErrMalformed, raw, k)
		}
		return f, nil
	case bitsRuns:
		if len(p) >= raw {
			return nil, fmt.Errorf("%w: bitfield runs of %d bytes, not shorter than the %d raw bytes: not canonical", ErrMalformed, len(p), raw)
		}
		f := NewBitfield(int(n))
		i, set := 0, false
		for k := 0; len(p) > 0; k++ {
			r, m := binary.Uvarint(p)
			switch {
			case m <= 0 || m != uvarintLen(r):
				return nil, fmt.Errorf("%w: bitfield run %d is not a minimal uvarint", ErrMalformed, k)
			case r == 0 && k > 0:
				return nil, fmt.Errorf("%w: bitfield run %d is empty", ErrMalformed, k)
			case r > uint64(int(n)-i):
				return nil, fmt.Errorf("%w: bitfield run %d of %d bits passes the end (%d of %d bits left)", ErrMalformed, k, r, int(n)-i, n)
			}
			if set {
				f.setRun(i, i+int(r))
			}
			i += int(r)
			set = !set
			p = p[m:]
		}
		if i != int(n) {
			return nil, fmt.Errorf("%w: bitfield runs cover %d of %d bits", ErrMalformed, i, n)
		}
		return f, nil
	}
	return nil, fmt.Errorf("%w: bitfield form %d", ErrMalformed, form)
}
