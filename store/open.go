package store

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/shoal-cdn/shoal/core"
)

// Chunk is an open chunk, read in slices of any size: a reader of a large
// chunk (up to core.MaxChunkSize) need not hold it whole. Close it when done.
type Chunk struct {
	f    *os.File
	size int64
}

// Size is the chunk's length in bytes.
func (c *Chunk) Size() int64 { return c.size }

// ReadAt reads len(p) bytes of the chunk from off (io.ReaderAt).
func (c *Chunk) ReadAt(p []byte, off int64) (int, error) { return c.f.ReadAt(p, off) }

// Close releases the chunk's file.
func (c *Chunk) Close() error { return c.f.Close() }

// Open is ReadInto for a reader that takes the chunk in slices: it opens
// chunk h (ErrNotFound if absent) and marks it recently used. With
// VerifyOnRead (and on the first read since the store was opened) the
// whole file is hashed first, through scratch (any
// length), so what the slices return has been verified: chunk files are
// immutable and only appear by rename, so the open file cannot change
// between the hash and the reads.
func (s *Store) Open(h core.Hash, scratch []byte) (*Chunk, error) {
	if len(scratch) == 0 {
		return nil, fmt.Errorf("chunk %s: empty scratch buffer: %w", h.Short(), ErrShortBuffer)
	}
	f, e, size, check, err := s.openChunk(h)
	if err != nil {
		return nil, err
	}
	if check {
		fail := func(err error) (*Chunk, error) {
			f.Close()
			return nil, err
		}
		d := sha256.New()
		n, err := io.CopyBuffer(d, io.NewSectionReader(f, 0, size), scratch)
		if err != nil {
			return fail(fmt.Errorf("chunk %s: %w", h.Short(), err))
		}
		if n != size {
			return fail(s.corrupt(e, "shrank while read"))
		}
		if got := core.Hash(d.Sum(nil)); got != h {
			return fail(s.corrupt(e, "content hashes to "+got.Short()))
		}
		s.markVerified(e)
	}
	s.n.hits.Add(1)
	return &Chunk{f: f, size: size}, nil
}
