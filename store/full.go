package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"time"
)

// ErrWriteFailed wraps every chunk write that failed on the cache's disk:
// no space (ENOSPC), no quota (EDQUOT), or any other write error. The
// message says "cache disk full" for the first two.
var ErrWriteFailed = errors.New("cache write failed")

// Probe delays: after a failed write the store is unwritable until a probe
// write succeeds; probes are probeFirst apart at first, doubling up to
// probeMax, with jitter.
const (
	probeFirst = time.Second
	probeMax   = 16 * time.Second
)

// writeError is a failed chunk write: errors.Is finds both ErrWriteFailed
// and the os error (syscall.ENOSPC, …).
type writeError struct {
	what string // "cache disk full" or "cache write failed"
	err  error
}

func (e *writeError) Error() string   { return e.what + ": " + e.err.Error() }
func (e *writeError) Unwrap() []error { return []error{ErrWriteFailed, e.err} }

func newWriteError(err error) error {
	what := "cache write failed"
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		what = "cache disk full"
	}
	return &writeError{what, err}
}

// unwritable is the store's state after a failed write. Guarded by Store.mu.
type unwritable struct {
	err     error         // the failed write, or the last failed probe
	next    time.Time     // no probe before
	delay   time.Duration // the last probe delay
	size    int           // bytes a probe writes: the failed chunk's size
	probing bool          // a probe write is running (outside mu)
}

// WriteErr is the error of the last failed write while the store is
// unwritable (nil otherwise). It never touches the disk.
func (s *Store) WriteErr() error {
	if !s.failing.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full == nil {
		return nil
	}
	return s.full.err
}

// Writable reports whether chunks can be stored: nil, or the error that
// made the store unwritable. When a probe is due (one probeFirst after the
// failure, then twice as long each time, up to probeMax, with jitter) it
// writes and removes a chunk-sized temp file first, and a success makes
// the store writable again. Call it when a chunk is wanted, so the store
// probes only while someone waits for space; any successful Put also ends
// the state.
func (s *Store) Writable() error {
	if !s.failing.Load() {
		return nil
	}
	s.mu.Lock()
	f := s.full
	if f == nil {
		s.mu.Unlock()
		return nil
	}
	if f.probing || s.clock.Now().Before(f.next) || s.closed {
		err := f.err
		s.mu.Unlock()
		return err
	}
	f.probing = true
	size := f.size
	s.mu.Unlock()

	perr := s.probe(size)

	s.mu.Lock()
	defer s.mu.Unlock()
	f.probing = false
	if perr == nil {
		s.writableLocked()
		return nil
	}
	f.err = newWriteError(fmt.Errorf("probe write of %d bytes in %s: %w", size, s.cfg.Dir, perr))
	f.delay = min(2*f.delay, probeMax)
	f.next = s.clock.Now().Add(jitter(f.delay))
	return f.err
}

// probe writes size bytes to a temp file in the store's directory and
// removes it.
func (s *Store) probe(size int) (err error) {
	if s.inject != nil {
		if err := s.inject(); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(s.cfg.Dir, tempPrefix+"probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err = f.Write(make([]byte, size)); err == nil && !s.cfg.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFailedLocked records a failed write of size bytes and returns the
// error for the caller. The first failure is logged; the following ones,
// until the store is writable again, are not.
func (s *Store) writeFailedLocked(err error, size int) error {
	werr := newWriteError(err)
	if s.full == nil {
		s.full = &unwritable{delay: probeFirst}
		s.full.next = s.clock.Now().Add(jitter(probeFirst))
		s.failing.Store(true)
		s.log.Error("chunk store: "+werr.(*writeError).what+"; no chunk is fetched until a probe write succeeds",
			"dir", s.cfg.Dir, "err", err)
	}
	s.full.err = werr
	s.full.size = max(s.full.size, size)
	return werr
}

// writableLocked ends the unwritable state, if any.
func (s *Store) writableLocked() {
	if s.full == nil {
		return
	}
	s.log.Info("chunk store: cache disk writable again", "dir", s.cfg.Dir, "was", s.full.err)
	s.full = nil
	s.failing.Store(false)
}

// jitter is d scaled by a random factor in [0.75, 1.25), so peers that
// failed together do not probe (or retry) in step.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}
