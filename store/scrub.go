package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// ScrubPause is how long Scrub rests between passes over the store, so a
// small cache is re-verified about once per ScrubPause rather than over
// and over at the full rate.
const ScrubPause = time.Hour

// Scrub re-verifies the chunks the store holds, in passes, reading at most
// rate bytes per second, until ctx ends (it returns ctx.Err()) or the store
// closes (ErrClosed). Each pass takes the chunks not yet verified since Open
// first, then the rest; a chunk that no longer hashes to its name is removed
// the way a read that finds damage removes it, so the OnRemove listeners
// hear of it. It is the background half of what Open no longer does: Open
// lists the directory without reading a chunk, and reads verify what they
// touch. rate must be positive.
func (s *Store) Scrub(ctx context.Context, rate float64) error {
	if rate <= 0 {
		return fmt.Errorf("%w: scrub rate %v: want a positive number of bytes per second", ErrConfig, rate)
	}
	buf := make([]byte, 256<<10)
	for {
		for _, e := range s.scrubOrder() {
			n, err := s.scrubOne(e, buf)
			if err != nil {
				return err
			}
			if err := core.Sleep(ctx, time.Duration(float64(n)/rate*float64(time.Second))); err != nil {
				return err
			}
		}
		if err := core.Sleep(ctx, ScrubPause); err != nil {
			return err
		}
	}
}

// scrubOrder returns the present entries, the unverified ones first.
func (s *Store) scrubOrder() []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*entry, 0, s.chunks)
	verified := make([]*entry, 0, s.chunks)
	for el := s.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*entry)
		if e.verified {
			verified = append(verified, e)
		} else {
			out = append(out, e)
		}
	}
	return append(out, verified...)
}

// scrubOne hashes e's file and removes it if it is damaged or gone. It
// returns the bytes read, and ErrClosed once the store is closed. It does
// not count as a use of the chunk.
func (s *Store) scrubOne(e *entry, buf []byte) (int64, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	if s.entries[e.hash] != e || e.state != present {
		s.mu.Unlock()
		return 0, nil // removed, or stored anew, since the pass began
	}
	size := e.size
	s.mu.Unlock()

	f, err := os.Open(s.path(e.hash))
	if errors.Is(err, fs.ErrNotExist) {
		s.dropIfPresent(e) // deleted behind the store's back
		return 0, nil
	}
	if err != nil {
		s.log.Warn("chunk store: scrub", "chunk", e.hash.String(), "err", err)
		return 0, nil
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.LimitReader(f, size+1), buf)
	if err != nil {
		s.log.Warn("chunk store: scrub", "chunk", e.hash.String(), "err", err)
		return n, nil
	}
	why := ""
	if got := core.Hash(h.Sum(nil)); n != size {
		why = fmt.Sprintf("size %d, indexed %d", n, size)
	} else if got != e.hash {
		why = "content hashes to " + got.Short()
	}
	if why != "" {
		s.dropCorrupt(e, why, &s.n.corruptOnScrub)
		return n, nil
	}
	s.markVerified(e)
	s.n.scrubbed.Add(1)
	s.n.scrubbedBytes.Add(n)
	return n, nil
}
