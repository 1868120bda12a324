// Package swarm is the engine that makes receivers of one content serve each
// other: a Session per content speaks the wire protocol with peers over a
// netx.Host, drives the picker and choker of package swarm/policy, verifies
// every chunk before it is stored, served or counted, bans senders of bad
// chunks, and falls back to the origin for what the swarm cannot deliver.
// Roles (the peer daemon, `shoal get`, benchmarks) import it.
package swarm

import (
	"fmt"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

// Content is a verified manifest with its hash layers, flattened into one
// global chunk index space: file by file in manifest order.
type Content struct {
	ID       core.ContentID
	Manifest *manifest.Manifest
	chunks   []chunkRef
	byHash   map[core.Hash][]int // chunk indexes sharing a hash (dedup)
	fileBase []int               // global index of each file's first chunk
}

type chunkRef struct {
	hash core.Hash
	size int32
	file int32
}

// NewContent checks that layers match m's files and builds the index.
func NewContent(id core.ContentID, m *manifest.Manifest, layers []manifest.HashLayer) (*Content, error) {
	if len(layers) != len(m.Files) {
		return nil, fmt.Errorf("swarm: %d hash layers for %d files", len(layers), len(m.Files))
	}
	c := &Content{ID: id, Manifest: m, byHash: map[core.Hash][]int{}}
	for fi, f := range m.Files {
		if int64(len(layers[fi])) != f.Chunks {
			return nil, fmt.Errorf("swarm: %s: hash layer of %d chunks, want %d", f.Path, len(layers[fi]), f.Chunks)
		}
		c.fileBase = append(c.fileBase, len(c.chunks))
		for k, h := range layers[fi] {
			i := len(c.chunks)
			c.chunks = append(c.chunks, chunkRef{hash: h, size: int32(core.ChunkLen(f.Size, m.ChunkSize, int64(k))), file: int32(fi)})
			c.byHash[h] = append(c.byHash[h], i)
		}
	}
	return c, nil
}

// Len is the number of chunks in the content.
func (c *Content) Len() int { return len(c.chunks) }

// Hash is the expected hash of chunk i.
func (c *Content) Hash(i int) core.Hash { return c.chunks[i].hash }

// Size is the length of chunk i.
func (c *Content) Size(i int) int { return int(c.chunks[i].size) }

// FileChunk is the global index of chunk k of file fi.
func (c *Content) FileChunk(fi, k int) int { return c.fileBase[fi] + k }

// Describe names chunk i for error messages: "chunk 41 of app.tar".
func (c *Content) Describe(i int) string {
	r := c.chunks[i]
	return fmt.Sprintf("chunk %d of %s", i-c.fileBase[r.file], c.Manifest.Files[r.file].Path)
}

// Indexes lists the chunk indexes whose hash is h (several when the content
// repeats a chunk).
func (c *Content) Indexes(h core.Hash) []int { return c.byHash[h] }
