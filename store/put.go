package store

import (
	"fmt"

	"github.com/shoal-cdn/shoal/core"
)

// Put stores data as chunk h. It checks SHA-256(data) == h first and stores
// nothing on a mismatch (ErrHashMismatch). A present chunk is only marked used.
// The write is atomic; afterwards, if usage is above the high watermark, least
// recently used unpinned chunks are evicted down to the low one. When only pinned
// chunks are left the Put still succeeds, and Stats.QuotaExceeded counts it.
func (s *Store) Put(h core.Hash, data []byte) error {
	if len(data) > core.MaxChunkSize {
		return fmt.Errorf("chunk %s: %d bytes: %w", h.Short(), len(data), ErrTooLarge)
	}
	// Hash before taking any lock: it is the expensive part and needs none.
	if got := core.SumSHA256(data); got != h {
		return fmt.Errorf("chunk %s: %w: content hashes to %s", h.Short(), ErrHashMismatch, got.Short())
	}
	s.mu.Lock()
	e, err := s.claimLocked(h)
	s.mu.Unlock()
	if err != nil || e == nil {
		return err
	}
	if err := s.writeChunk(h, data); err != nil {
		s.forget(e)
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.writeFailedLocked(err, len(data))
	}
	s.n.puts.Add(1)
	s.mu.Lock()
	e.verified = true // hashed above
	s.writableLocked()
	s.addPresentLocked(e, int64(len(data)))
	victims := s.selectVictimsLocked()
	s.mu.Unlock()
	s.removeVictims(victims)
	return nil
}
