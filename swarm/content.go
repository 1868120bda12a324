// Package swarm is the engine that makes receivers of one content serve each
// other: a Session per content speaks the wire protocol with peers over a
// netx.Host, drives the picker and choker of package swarm/policy, verifies
// every chunk before it is stored, served or counted, bans senders of bad
// chunks, and falls back to the origin for what the swarm cannot deliver.
// Roles (the peer daemon, `shoal get`, benchmarks) import it.
package swarm

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

// ErrNoLayer means a chunk's hash is not known yet: its file's hash layer
// has not been loaded.
var ErrNoLayer = errors.New("hash layer not loaded")

// Content is a verified manifest flattened into one global chunk index
// space, file by file in manifest order. A file's chunk hashes (its hash
// layer) are loaded lazily, only for files someone reads, so joining costs
// one manifest whatever the number of files. A file of at most one chunk
// needs no layer: its Merkle root is its only chunk hash. Of a paged
// manifest, the roots of multi-chunk files are learnt the same way, page by
// page (Roots), before their layers.
type Content struct {
	ID       core.ContentID
	Manifest *manifest.Manifest
	Roots    *manifest.RootTable // every file's root, paged ones once their page is added
	chunks   []chunkRef
	fileBase []int                                // global index of each file's first chunk
	layers   []atomic.Pointer[manifest.HashLayer] // per file; nil until loaded

	hmu    sync.RWMutex
	byHash map[core.Hash][]int // guarded by hmu: chunk indexes sharing a hash (dedup), loaded files only
}

type chunkRef struct {
	size int32
	file int32
}

// NewContent builds the index of m. layers holds each file's verified hash
// layer, or is nil to load them later with SetLayer.
func NewContent(id core.ContentID, m *manifest.Manifest, layers []manifest.HashLayer) (*Content, error) {
	if layers != nil && len(layers) != len(m.Files) {
		return nil, fmt.Errorf("swarm: %d hash layers for %d files", len(layers), len(m.Files))
	}
	c := &Content{ID: id, Manifest: m, Roots: manifest.NewRootTable(m), byHash: map[core.Hash][]int{},
		layers: make([]atomic.Pointer[manifest.HashLayer], len(m.Files))}
	for fi, f := range m.Files {
		c.fileBase = append(c.fileBase, len(c.chunks))
		for k := range f.Chunks {
			c.chunks = append(c.chunks, chunkRef{size: int32(core.ChunkLen(f.Size, m.ChunkSize, k)), file: int32(fi)})
		}
	}
	for fi, f := range m.Files {
		switch {
		case layers != nil:
			if err := c.SetLayer(fi, layers[fi]); err != nil {
				return nil, err
			}
		case f.Chunks == 0:
			c.SetLayer(fi, manifest.HashLayer{})
		case f.Chunks == 1:
			c.SetLayer(fi, manifest.HashLayer{f.Root}) // a one-leaf tree's root is the leaf
		}
	}
	return c, nil
}

// SetLayer records file fi's hash layer, which the caller has verified
// against the file's signed root (of a paged manifest: the root its
// verified page gives). Setting it again is a no-op.
func (c *Content) SetLayer(fi int, l manifest.HashLayer) error {
	f := c.Manifest.Files[fi]
	if int64(len(l)) != f.Chunks {
		return fmt.Errorf("swarm: %s: hash layer of %d chunks, want %d", f.Path, len(l), f.Chunks)
	}
	c.hmu.Lock()
	defer c.hmu.Unlock()
	if c.layers[fi].Load() != nil {
		return nil
	}
	for k, h := range l {
		c.byHash[h] = append(c.byHash[h], c.fileBase[fi]+k)
	}
	c.layers[fi].Store(&l)
	return nil
}

// Layer is file fi's hash layer, nil while not loaded.
func (c *Content) Layer(fi int) manifest.HashLayer {
	if l := c.layers[fi].Load(); l != nil {
		return *l
	}
	return nil
}

// HasLayer reports whether file fi's chunk hashes are known.
func (c *Content) HasLayer(fi int) bool { return c.layers[fi].Load() != nil }

// Known reports whether chunk i's hash is known (its file's layer loaded).
func (c *Content) Known(i int) bool { return c.HasLayer(int(c.chunks[i].file)) }

// Len is the number of chunks in the content.
func (c *Content) Len() int { return len(c.chunks) }

// Hash is the expected hash of chunk i; the zero hash while its file's
// layer is not loaded (Known).
func (c *Content) Hash(i int) core.Hash {
	r := c.chunks[i]
	l := c.layers[r.file].Load()
	if l == nil {
		return core.Hash{}
	}
	return (*l)[i-c.fileBase[r.file]]
}

// Size is the length of chunk i.
func (c *Content) Size(i int) int { return int(c.chunks[i].size) }

// File is the index of the file chunk i belongs to.
func (c *Content) File(i int) int { return int(c.chunks[i].file) }

// FileChunk is the global index of chunk k of file fi.
func (c *Content) FileChunk(fi, k int) int { return c.fileBase[fi] + k }

// FileChunks is the global index range [from, to) of file fi's chunks.
func (c *Content) FileChunks(fi int) (from, to int) {
	return c.fileBase[fi], c.fileBase[fi] + int(c.Manifest.Files[fi].Chunks)
}

// Describe names chunk i for error messages: "chunk 41 of app.tar".
func (c *Content) Describe(i int) string {
	r := c.chunks[i]
	return fmt.Sprintf("chunk %d of %s", i-c.fileBase[r.file], c.Manifest.Files[r.file].Path)
}

// Indexes lists the chunk indexes whose hash is h (several when the content
// repeats a chunk), among files whose layers are loaded.
func (c *Content) Indexes(h core.Hash) []int {
	c.hmu.RLock()
	defer c.hmu.RUnlock()
	return c.byHash[h]
}
