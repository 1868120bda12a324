// Package store is the receiver's chunk cache: a content-addressed directory of
// verified chunks with an LRU byte quota, pins, and crash-safe writes.
//
// A chunk lives at Dir/<hh>/<hex>, where hex is its SHA-256 and hh the first two
// digits. A name only ever appears by renaming a fully written, fsynced temp file.
// Open lists the directory without reading the chunks (a stat each, however big
// the cache); a chunk is hashed before its bytes are first served after Open, and
// Scrub re-verifies held chunks in the background at a bounded rate, so a chunk a
// power loss or a bad disk damaged is removed, never served.
//
// It is a building block: the swarm engine, the peer agent and tools import it;
// it imports only core.
package store

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/shoal-cdn/shoal/core"
)

// Default watermarks, as fractions of Config.Quota.
const (
	DefaultHighWater = 0.95
	DefaultLowWater  = 0.85
)

// Sentinel errors; every returned error wraps one of them (or an os error) with
// the chunk it concerns.
var (
	ErrNotFound     = errors.New("chunk not in store")
	ErrHashMismatch = errors.New("hash mismatch")
	ErrCorrupt      = errors.New("corrupt chunk on disk")
	ErrShortBuffer  = errors.New("buffer too small for chunk")
	ErrTooLarge     = errors.New("chunk larger than the maximum chunk size")
	ErrClosed       = errors.New("store closed")
	ErrConfig       = errors.New("bad store config")
	ErrLocked       = errors.New("store directory in use by another store")
)

// Config says where the cache lives and how big it may grow.
type Config struct {
	Dir          string  // created if missing
	Quota        int64   // bytes; 0 = unlimited
	HighWater    float64 // evict when usage > HighWater*Quota (0 = DefaultHighWater)
	LowWater     float64 // ... down to LowWater*Quota (0 = DefaultLowWater)
	VerifyOnRead bool    // re-hash on every read; a mismatch deletes the chunk and returns ErrCorrupt
	// NoSync skips the fsync before a chunk's rename. A power loss may
	// then leave a chunk with bad bytes under its name: the first read
	// after Open hashes it and deletes it (as Scrub does in the
	// background), so a crash costs a re-fetch, never a wrong byte. For
	// caches whose writes sit on a viewer's start-up path.
	NoSync bool
	Logger *slog.Logger // optional; nil discards
	// Clock times the probes of a store made unwritable by a failed write
	// (default core.RealClock).
	Clock core.Clock
}

func (c *Config) fill() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: Dir is empty", ErrConfig)
	}
	if c.Quota < 0 {
		return fmt.Errorf("%w: Quota %d is negative", ErrConfig, c.Quota)
	}
	if c.HighWater == 0 {
		c.HighWater = DefaultHighWater
	}
	if c.LowWater == 0 {
		c.LowWater = DefaultLowWater
	}
	if !(c.LowWater > 0 && c.LowWater <= c.HighWater && c.HighWater <= 1) {
		return fmt.Errorf("%w: watermarks low %.2f, high %.2f: want 0 < low <= high <= 1", ErrConfig, c.LowWater, c.HighWater)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = core.RealClock{}
	}
	return nil
}

// Stats are cumulative counters since Open.
type Stats struct {
	Hits          int64 // reads that returned a chunk
	Misses        int64 // reads of an absent chunk
	Puts          int64 // chunks written (no-op Puts of present chunks excluded)
	Evictions     int64 // chunks evicted for quota
	EvictedBytes  int64
	CorruptAtScan int64 // files deleted by Open: not a chunk name, not a regular file, or an impossible size
	CorruptOnRead int64 // chunks deleted by a read that found them damaged
	// Scrub: chunks (and their bytes) verified, and chunks it deleted as damaged.
	Scrubbed, ScrubbedBytes, CorruptOnScrub int64
	TempRemoved                             int64 // leftover temp files removed by Open
	QuotaExceeded                           int64 // times usage stayed above Quota because all that was left was pinned
}

type counters struct {
	hits, misses, puts, evictions, evictedBytes     atomic.Int64
	corruptAtScan, corruptOnRead, tempRemoved, over atomic.Int64
	scrubbed, scrubbedBytes, corruptOnScrub         atomic.Int64
}

// Store is a chunk cache on disk. It is safe for concurrent use.
type Store struct {
	cfg       Config
	log       *slog.Logger
	high, low int64 // watermarks in bytes; unused when Quota is 0
	lock      *os.File
	dirs      *dirSyncer
	n         counters
	clock     core.Clock
	failing   atomic.Bool  // full != nil, readable without mu
	inject    func() error // tests: fails chunk and probe writes when it returns an error

	mu sync.Mutex // guards the fields below
	// changed is broadcast (on mu) whenever an entry leaves the writing or
	// removing state, so operations on the same hash can wait their turn.
	changed   *sync.Cond
	entries   map[core.Hash]*entry
	lru       *list.List // present entries, most recently used at the front
	pins      map[core.Hash]int
	usage     int64 // bytes in present entries
	chunks    int   // present entries
	overQuota bool  // inside an excursion above Quota, so it is logged once
	closed    bool
	full      *unwritable // set while the last write failed (full.go)

	// lmu guards listeners. It is separate from mu so removals can read the
	// listener set after releasing mu, and it is never held while a listener
	// runs, so listeners may call back into the store, OnRemove or a cancel.
	lmu sync.Mutex
	// listeners are the OnRemove callbacks in registration order. The slice
	// is copied on every change, never modified in place, so a removal can
	// iterate a snapshot without holding lmu.
	listeners []*removeListener
}

// Open opens (creating if needed) the cache in cfg.Dir. It removes leftover temp
// files and files that cannot be chunks, indexes the rest without reading them
// (see scan), then evicts down to the low watermark if the directory is over
// quota.
func Open(cfg Config) (*Store, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("store %s: %w", cfg.Dir, err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:     cfg,
		log:     cfg.Logger,
		lock:    lock,
		dirs:    newDirSyncer(cfg.Logger),
		clock:   cfg.Clock,
		entries: make(map[core.Hash]*entry),
		lru:     list.New(),
		pins:    make(map[core.Hash]int),
	}
	s.changed = sync.NewCond(&s.mu)
	if cfg.Quota > 0 {
		s.high = int64(cfg.HighWater * float64(cfg.Quota))
		s.low = int64(cfg.LowWater * float64(cfg.Quota))
	}
	if err := s.scan(); err != nil {
		lock.Close()
		return nil, err
	}
	s.mu.Lock()
	victims := s.selectVictimsLocked()
	s.mu.Unlock()
	s.removeVictims(victims)
	bytes, chunks := s.Usage()
	s.log.Info("chunk store open", "dir", cfg.Dir, "chunks", chunks, "bytes", bytes,
		"corrupt_removed", s.n.corruptAtScan.Load(), "temp_removed", s.n.tempRemoved.Load())
	return s, nil
}

// Close stops the store and makes the names of all chunks written so far
// durable; later calls return ErrClosed. Closing twice is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.changed.Broadcast()
	s.mu.Unlock()
	s.dirs.flush()
	return s.lock.Close() // releases the directory lock
}

// Usage returns the bytes and number of chunks held.
func (s *Store) Usage() (bytes int64, chunks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage, s.chunks
}

// Stats returns the counters since Open.
func (s *Store) Stats() Stats {
	return Stats{
		Hits:           s.n.hits.Load(),
		Misses:         s.n.misses.Load(),
		Puts:           s.n.puts.Load(),
		Evictions:      s.n.evictions.Load(),
		EvictedBytes:   s.n.evictedBytes.Load(),
		CorruptAtScan:  s.n.corruptAtScan.Load(),
		CorruptOnRead:  s.n.corruptOnRead.Load(),
		TempRemoved:    s.n.tempRemoved.Load(),
		QuotaExceeded:  s.n.over.Load(),
		Scrubbed:       s.n.scrubbed.Load(),
		ScrubbedBytes:  s.n.scrubbedBytes.Load(),
		CorruptOnScrub: s.n.corruptOnScrub.Load(),
	}
}
