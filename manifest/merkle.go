package manifest

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/shoal-cdn/shoal/core"
)

// The Merkle tree over a file's chunk hashes has the shape of RFC 6962's: for
// n leaves, the left subtree holds the largest power of two smaller than n.
// Leaves are the chunk hashes themselves (plain SHA-256 of the chunk, so a
// chunk is addressed by the same hash everywhere); an interior node is
// SHA-256(0x01 || left || right). The leaf count is fixed by the file size in
// the signed manifest, so an interior node can never pass for a leaf. The
// root of an empty file is SHA-256(0x00).

// Errors of the Merkle layer.
var (
	ErrRootMismatch = errors.New("merkle root mismatch")
	ErrBadProof     = errors.New("bad merkle proof")
)

var emptyRoot = core.SumSHA256([]byte{0})

func nodeHash(l, r core.Hash) core.Hash {
	var buf [1 + 2*core.HashSize]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[1+core.HashSize:], r[:])
	return sha256.Sum256(buf[:])
}

// Root computes the Merkle root of a list of leaf hashes.
func Root(leaves []core.Hash) core.Hash {
	var b RootBuilder
	for _, h := range leaves {
		b.Add(h)
	}
	return b.Root()
}

// RootBuilder computes a Merkle root from leaves added one at a time, in
// O(log n) memory, so publishing a file of any size streams.
type RootBuilder struct {
	// stack holds the roots of complete subtrees, largest first; levels[i]
	// is the height of stack[i]. Heights strictly decrease down the stack,
	// like the bits of the leaf count.
	stack  []core.Hash
	levels []int
	n      int64
}

// Add appends one leaf.
func (b *RootBuilder) Add(leaf core.Hash) {
	h, lvl := leaf, 0
	for len(b.stack) > 0 && b.levels[len(b.levels)-1] == lvl {
		h = nodeHash(b.stack[len(b.stack)-1], h)
		b.stack, b.levels = b.stack[:len(b.stack)-1], b.levels[:len(b.levels)-1]
		lvl++
	}
	b.stack, b.levels = append(b.stack, h), append(b.levels, lvl)
	b.n++
}

// Len is the number of leaves added.
func (b *RootBuilder) Len() int64 { return b.n }

// Root returns the root of the leaves added so far. Unequal complete subtrees
// fold right to left, which yields exactly RFC 6962's split.
func (b *RootBuilder) Root() core.Hash {
	if len(b.stack) == 0 {
		return emptyRoot
	}
	h := b.stack[len(b.stack)-1]
	for i := len(b.stack) - 2; i >= 0; i-- {
		h = nodeHash(b.stack[i], h)
	}
	return h
}

// Proof shows that one leaf belongs under a root: the sibling hashes from the
// leaf up to the root.
type Proof struct {
	Index    uint64 // leaf index
	Count    uint64 // number of leaves in the tree
	Siblings []core.Hash
}

// MaxProofLen bounds the siblings of a proof: a tree of at most 2^40 leaves.
const MaxProofLen = 40

// split returns the size of the left subtree of a tree with n > 1 leaves.
func split(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// BuildProof returns the proof for leaf i of leaves.
func BuildProof(leaves []core.Hash, i int) (Proof, error) {
	if i < 0 || i >= len(leaves) {
		return Proof{}, fmt.Errorf("%w: leaf %d of %d", ErrBadProof, i, len(leaves))
	}
	p := Proof{Index: uint64(i), Count: uint64(len(leaves))}
	var path func(lo, hi int)
	path = func(lo, hi int) {
		if hi-lo == 1 {
			return
		}
		k := lo + int(split(uint64(hi-lo)))
		if i < k {
			path(lo, k)
			p.Siblings = append(p.Siblings, Root(leaves[k:hi]))
		} else {
			path(k, hi)
			p.Siblings = append(p.Siblings, Root(leaves[lo:k]))
		}
	}
	path(0, len(leaves))
	return p, nil
}

// Verify reports whether leaf is leaf p.Index of a tree of count leaves with
// the given root. Root and count must come from the signed manifest: a proof
// for one leaf count can hash to the same root as a proof for another, so the
// count the proof carries is only checked against the trusted one. It
// returns ErrBadProof when the proof is malformed and ErrRootMismatch when it
// is well-formed but does not lead to root.
func (p Proof) Verify(root core.Hash, count uint64, leaf core.Hash) error {
	if p.Count != count {
		return fmt.Errorf("%w: proof is for %d leaves, the file has %d", ErrBadProof, p.Count, count)
	}
	if p.Count == 0 || p.Index >= p.Count {
		return fmt.Errorf("%w: leaf %d of %d", ErrBadProof, p.Index, p.Count)
	}
	// Walk down to find each level's side, recording which way we went.
	var right []bool // right[d]: at depth d the leaf is in the right subtree
	lo, n := p.Index, p.Count
	for n > 1 {
		k := split(n)
		if lo < k {
			right, n = append(right, false), k
		} else {
			right, lo, n = append(right, true), lo-k, n-k
		}
	}
	if len(right) != len(p.Siblings) {
		return fmt.Errorf("%w: %d siblings, want %d for leaf %d of %d", ErrBadProof, len(p.Siblings), len(right), p.Index, p.Count)
	}
	h := leaf
	for i, s := range p.Siblings {
		if right[len(right)-1-i] {
			h = nodeHash(s, h)
		} else {
			h = nodeHash(h, s)
		}
	}
	if h != root {
		return fmt.Errorf("%w: leaf %d of %d", ErrRootMismatch, p.Index, p.Count)
	}
	return nil
}

// MarshalBinary encodes the proof: index and count as big-endian uint64, a
// sibling count byte, then the siblings.
func (p Proof) MarshalBinary() ([]byte, error) {
	if len(p.Siblings) > MaxProofLen {
		return nil, fmt.Errorf("%w: %d siblings, at most %d", ErrBadProof, len(p.Siblings), MaxProofLen)
	}
	b := make([]byte, 17, 17+len(p.Siblings)*core.HashSize)
	binary.BigEndian.PutUint64(b, p.Index)
	binary.BigEndian.PutUint64(b[8:], p.Count)
	b[16] = byte(len(p.Siblings))
	for _, s := range p.Siblings {
		b = append(b, s[:]...)
	}
	return b, nil
}

// UnmarshalBinary decodes the form written by MarshalBinary, rejecting
// trailing bytes and oversize proofs.
func (p *Proof) UnmarshalBinary(b []byte) error {
	if len(b) < 17 {
		return fmt.Errorf("%w: %d bytes, shorter than the 17-byte header", ErrBadProof, len(b))
	}
	n := int(b[16])
	if n > MaxProofLen {
		return fmt.Errorf("%w: %d siblings, at most %d", ErrBadProof, n, MaxProofLen)
	}
	if len(b) != 17+n*core.HashSize {
		return fmt.Errorf("%w: %d bytes, want %d for %d siblings", ErrBadProof, len(b), 17+n*core.HashSize, n)
	}
	p.Index = binary.BigEndian.Uint64(b)
	p.Count = binary.BigEndian.Uint64(b[8:])
	p.Siblings = make([]core.Hash, n)
	for i := range p.Siblings {
		copy(p.Siblings[i][:], b[17+i*core.HashSize:])
	}
	return nil
}
