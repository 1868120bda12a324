package manifest

import (
	"errors"
	"fmt"

	"github.com/shoal-cdn/shoal/core"
)

// ErrBadHashLayer is returned when a hash layer has the wrong length or does
// not reproduce the file's Merkle root.
var ErrBadHashLayer = errors.New("bad hash layer")

// HashLayer is a file's full list of chunk hashes, in order. It is published
// beside the manifest (not inside it) and trusted only once it reproduces the
// root that the signed manifest carries.
type HashLayer []core.Hash

// Bytes encodes the layer as the concatenated 32-byte hashes.
func (l HashLayer) Bytes() []byte {
	b := make([]byte, 0, len(l)*core.HashSize)
	for _, h := range l {
		b = append(b, h[:]...)
	}
	return b
}

// ParseHashLayer decodes and checks the hash layer of f: it must hold exactly
// f.Chunks hashes and reproduce f.Root.
func ParseHashLayer(f File, b []byte) (HashLayer, error) {
	if int64(len(b)) != f.Chunks*core.HashSize {
		return nil, fmt.Errorf("%w: %s: %d bytes, want %d for %d chunks", ErrBadHashLayer, f.Path, len(b), f.Chunks*core.HashSize, f.Chunks)
	}
	l := make(HashLayer, f.Chunks)
	for i := range l {
		copy(l[i][:], b[i*core.HashSize:])
	}
	if r := Root(l); r != f.Root {
		return nil, fmt.Errorf("%w: %s: hash layer gives root %s, manifest says %s", ErrBadHashLayer, f.Path, r.Short(), f.Root.Short())
	}
	return l, nil
}
