package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

// naiveRoot is RFC 6962's recursive definition, written out plainly.
func naiveRoot(l []core.Hash) core.Hash {
	switch len(l) {
	case 0:
		return emptyRoot
	case 1:
		return l[0]
	}
	k := 1
	for k*2 < len(l) {
		k *= 2
	}
	return nodeHash(naiveRoot(l[:k]), naiveRoot(l[k:]))
}

func leaves(n int) []core.Hash {
	l := make([]core.Hash, n)
	for i := range l {
		l[i] = core.SumSHA256([]byte(fmt.Sprint("leaf", i)))
	}
	return l
}

func TestRootMatchesDefinition(t *testing.T) {
	for n := 0; n <= 70; n++ {
		l := leaves(n)
		if got, want := Root(l), naiveRoot(l); got != want {
			t.Fatalf("n=%d: streaming root %s, recursive root %s", n, got.Short(), want.Short())
		}
	}
}

func TestProofs(t *testing.T) {
	for n := 1; n <= 33; n++ {
		l := leaves(n)
		root := Root(l)
		for i := 0; i < n; i++ {
			p, err := BuildProof(l, i)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Verify(root, uint64(n), l[i]); err != nil {
				t.Fatalf("n=%d i=%d: %v", n, i, err)
			}
			if err := p.Verify(root, uint64(n), l[(i+1)%n]); n > 1 && !errors.Is(err, ErrRootMismatch) {
				t.Fatalf("n=%d i=%d: wrong leaf accepted: %v", n, i, err)
			}
			b, _ := p.MarshalBinary()
			var q Proof
			if err := q.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if err := q.Verify(root, uint64(n), l[i]); err != nil {
				t.Fatalf("decoded proof: %v", err)
			}
			if n > 1 {
				q.Index = uint64((i + 1) % n)
				if q.Verify(root, uint64(n), l[i]) == nil {
					t.Fatalf("n=%d i=%d: proof accepted at another index", n, i)
				}
			}
		}
	}
}

func TestHashLayer(t *testing.T) {
	l := HashLayer(leaves(5))
	f := File{Path: "x", Size: 5 * core.MinChunkSize, Chunks: 5, Root: Root(l)}
	got, err := ParseHashLayer(f, l.Bytes())
	if err != nil || len(got) != 5 {
		t.Fatalf("ParseHashLayer: %v", err)
	}
	bad := l.Bytes()
	bad[40] ^= 1
	if _, err := ParseHashLayer(f, bad); !errors.Is(err, ErrBadHashLayer) {
		t.Fatalf("flipped byte: %v", err)
	}
	if _, err := ParseHashLayer(f, l.Bytes()[:64]); !errors.Is(err, ErrBadHashLayer) {
		t.Fatalf("short layer: %v", err)
	}
}

func FuzzProof(f *testing.F) {
	l := leaves(7)
	p, _ := BuildProof(l, 5)
	b, _ := p.MarshalBinary()
	f.Add(b, l[5][:])
	f.Add([]byte{}, []byte{})
	root := Root(l)
	f.Fuzz(func(t *testing.T, b, leaf []byte) {
		var p Proof
		if err := p.UnmarshalBinary(b); err != nil {
			return
		}
		enc, err := p.MarshalBinary()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("encode(decode(b)) != b: %v", err)
		}
		var q Proof
		if err := q.UnmarshalBinary(enc); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		var h core.Hash
		copy(h[:], leaf)
		// Verification must never panic, and may succeed only for a real leaf.
		if p.Verify(root, 7, h) == nil && h != l[p.Index] {
			t.Fatalf("proof verified a leaf that is not in the tree: index %d count %d", p.Index, p.Count)
		}
	})
}

func FuzzParseHashLayer(f *testing.F) {
	l := HashLayer(leaves(3))
	file := File{Path: "x", Size: 3 * core.MinChunkSize, Chunks: 3, Root: Root(l)}
	f.Add(l.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseHashLayer(file, b)
		if err != nil {
			return
		}
		// Only the one true layer reproduces the signed root.
		if !bytes.Equal(got.Bytes(), b) || !bytes.Equal(b, l.Bytes()) {
			t.Fatalf("accepted a hash layer that is not the published one")
		}
		again, err := ParseHashLayer(file, got.Bytes())
		if err != nil || len(again) != len(got) {
			t.Fatalf("decode → encode → decode unstable: %v", err)
		}
	})
}
