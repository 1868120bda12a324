package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync/atomic"

	"github.com/shoal-cdn/shoal/core"
)

// Get returns chunk h (ErrNotFound if absent) and marks it recently used.
func (s *Store) Get(h core.Hash) ([]byte, error) {
	var buf []byte
	n, err := s.read(h, func(size int64) ([]byte, error) {
		buf = make([]byte, size)
		return buf, nil
	})
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// ReadInto is Get without allocating: it copies chunk h into buf and returns its
// length, or ErrShortBuffer if buf cannot hold it (core.MaxChunkSize always can).
func (s *Store) ReadInto(h core.Hash, buf []byte) (int, error) {
	return s.read(h, func(size int64) ([]byte, error) {
		if int64(len(buf)) < size {
			return nil, fmt.Errorf("chunk %s: %d bytes, buffer %d: %w", h.Short(), size, len(buf), ErrShortBuffer)
		}
		return buf[:size], nil
	})
}

// read finds h under mu, then reads its file without it. Files are immutable
// and only appear by rename, so whatever file the open finds is complete; an
// eviction that unlinks it afterwards does not disturb the read.
func (s *Store) read(h core.Hash, alloc func(size int64) ([]byte, error)) (int, error) {
	f, e, size, check, err := s.openChunk(h)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf, err := alloc(size)
	if err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(f, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return 0, s.corrupt(e, "shrank while read")
		}
		return 0, fmt.Errorf("chunk %s: %w", h.Short(), err)
	}
	if check {
		if got := core.SumSHA256(buf); got != h {
			return 0, s.corrupt(e, "content hashes to "+got.Short())
		}
		s.markVerified(e)
	}
	s.n.hits.Add(1)
	return len(buf), nil
}

// openChunk finds h under mu (marking it recently used) and opens its file
// without it, checking the file's size against the index (size). check says the
// bytes must be hashed before use: with VerifyOnRead, and on the first
// read since the store was opened (opening indexes chunks without reading
// them); markVerified records that first check. Files are immutable and
// only appear by rename, so the file found is complete.
func (s *Store) openChunk(h core.Hash) (f *os.File, e *entry, size int64, check bool, err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, 0, false, ErrClosed
	}
	e = s.entries[h]
	if e == nil || e.state != present {
		s.mu.Unlock()
		s.n.misses.Add(1)
		return nil, nil, 0, false, fmt.Errorf("chunk %s: %w", h.Short(), ErrNotFound)
	}
	s.touchLocked(e)
	size = e.size
	verified := e.verified
	s.mu.Unlock()

	f, err = os.Open(s.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		// Evicted or deleted since the lookup, or removed behind our back.
		s.dropIfPresent(e)
		s.n.misses.Add(1)
		return nil, nil, 0, false, fmt.Errorf("chunk %s: %w", h.Short(), ErrNotFound)
	}
	if err != nil {
		return nil, nil, 0, false, fmt.Errorf("chunk %s: %w", h.Short(), err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, 0, false, fmt.Errorf("chunk %s: %w", h.Short(), err)
	}
	if fi.Size() != size {
		f.Close()
		return nil, nil, 0, false, s.corrupt(e, fmt.Sprintf("size %d, indexed %d", fi.Size(), size))
	}
	return f, e, size, s.cfg.VerifyOnRead || !verified, nil
}

// markVerified records that e's file was hashed since the store was opened.
func (s *Store) markVerified(e *entry) {
	s.mu.Lock()
	e.verified = true
	s.mu.Unlock()
}

// corrupt deletes a chunk a read found damaged on disk and returns the
// ErrCorrupt to report.
func (s *Store) corrupt(e *entry, why string) error {
	s.dropCorrupt(e, why, &s.n.corruptOnRead)
	return fmt.Errorf("chunk %s: %w: %s", e.hash.Short(), ErrCorrupt, why)
}

// dropCorrupt deletes a chunk found damaged on disk, counting it in n.
func (s *Store) dropCorrupt(e *entry, why string, n *atomic.Int64) {
	if s.dropIfPresent(e) {
		n.Add(1)
		s.log.Warn("chunk store: dropped corrupt chunk", "chunk", e.hash.String(), "why", why)
	}
}

// dropIfPresent removes e's file if e is still the present entry for its hash,
// so that a fresh Put of the same hash in the meantime is left alone, and tells
// the OnRemove listeners when it did.
func (s *Store) dropIfPresent(e *entry) bool {
	s.mu.Lock()
	if s.entries[e.hash] != e || e.state != present {
		s.mu.Unlock()
		return false
	}
	s.markRemovingLocked(e)
	s.mu.Unlock()
	if err := s.unlink(e); err != nil {
		s.log.Error("chunk store: removing chunk", "chunk", e.hash.String(), "err", err)
	}
	s.forget(e)
	s.notifyRemoved(e.hash)
	return true
}
