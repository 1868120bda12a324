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

func bitfieldLen(f *Bitfield) int { return 4 + (f.Len()+7)/8 }

func appendBitfield(b []byte, f *Bitfield) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(f.Len()))
	if f == nil {
		return b
	}
	return append(b, f.b...)
}

// decodeBitfield decodes a bitfield that must fill p exactly.
func decodeBitfield(p []byte) (*Bitfield, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: bitfield truncated to %d bytes", ErrMalformed, len(p))
	}
	n := binary.BigEndian.Uint32(p)
	if n > MaxBitfield {
		return nil, fmt.Errorf("%w: bitfield of %d bits, max %d", ErrMalformed, n, MaxBitfield)
	}
	return BitfieldFromBytes(p[4:], int(n))
}
