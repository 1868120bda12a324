package store

import (
	"container/list"
	"errors"
	"io/fs"
	"os"
	"slices"
	"sync/atomic"

	"github.com/shoal-cdn/shoal/core"
)

// state is where an entry is in its life. Only present entries are in the LRU
// and counted in usage; the other two exist so that a Put, a Delete and an
// eviction of the same hash never touch its file at the same time.
type state uint8

const (
	writing  state = iota // a Put is writing the file
	present               // the file is complete under its name
	removing              // the file is being unlinked
)

type entry struct {
	hash  core.Hash
	size  int64
	state state
	elem  *list.Element // in Store.lru while present
	// verified (guarded by Store.mu): the file was hashed since Open, by
	// the Put that wrote it, a read or Scrub. Entries Open indexed from
	// the directory listing start out false.
	verified bool
}

// Pin protects h from eviction until a matching Unpin. Pins are counted, and h
// need not be present yet: pin before fetching so the chunk survives until used.
// Delete still removes a pinned chunk.
func (s *Store) Pin(h core.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pins[h]++
}

// Unpin undoes one Pin. Unpinning an unpinned hash does nothing. If pins had kept
// the store over its high watermark, the now-unpinned chunks are evicted.
func (s *Store) Unpin(h core.Hash) {
	s.mu.Lock()
	switch n := s.pins[h]; {
	case n > 1:
		s.pins[h] = n - 1
	case n == 1:
		delete(s.pins, h)
	}
	var victims []*entry
	if !s.closed {
		victims = s.selectVictimsLocked()
	}
	s.mu.Unlock()
	s.removeVictims(victims)
}

// Has reports whether h is present. It does not count as a use.
func (s *Store) Has(h core.Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[h]
	return e != nil && e.state == present
}

// Delete removes h, pinned or not, and tells the OnRemove listeners. Deleting an
// absent chunk is not an error.
func (s *Store) Delete(h core.Hash) error {
	s.mu.Lock()
	var e *entry
	for {
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		e = s.entries[h]
		if e == nil {
			s.mu.Unlock()
			return nil
		}
		if e.state == present {
			break
		}
		s.changed.Wait()
	}
	s.markRemovingLocked(e)
	s.mu.Unlock()
	err := s.unlink(e)
	s.forget(e)
	s.notifyRemoved(e.hash)
	return err
}

// claimLocked reserves h for a Put. It returns nil if h is already present
// (marking it used), and waits while another operation on h is under way.
func (s *Store) claimLocked(h core.Hash) (*entry, error) {
	for {
		if s.closed {
			return nil, ErrClosed
		}
		e := s.entries[h]
		if e == nil {
			e = &entry{hash: h, state: writing}
			s.entries[h] = e
			return e, nil
		}
		if e.state == present {
			s.touchLocked(e)
			return nil, nil
		}
		s.changed.Wait()
	}
}

func (s *Store) touchLocked(e *entry) {
	if e.elem != nil {
		s.lru.MoveToFront(e.elem)
	}
}

func (s *Store) addPresentLocked(e *entry, size int64) {
	e.size = size
	e.state = present
	e.elem = s.lru.PushFront(e)
	s.usage += size
	s.chunks++
	s.changed.Broadcast()
}

func (s *Store) markRemovingLocked(e *entry) {
	if e.elem != nil {
		s.lru.Remove(e.elem)
		e.elem = nil
	}
	s.usage -= e.size
	s.chunks--
	e.state = removing
}

// forget drops a removing (or failed writing) entry from the index once its file
// is dealt with, and wakes whoever waits on its hash.
func (s *Store) forget(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries[e.hash] == e {
		delete(s.entries, e.hash)
	}
	s.changed.Broadcast()
}

// selectVictimsLocked marks least recently used unpinned chunks as removing until
// usage is at the low watermark, if it is above the high one. The caller unlinks
// them with removeVictims after releasing mu.
func (s *Store) selectVictimsLocked() []*entry {
	if s.cfg.Quota == 0 || s.usage <= s.high {
		s.overQuota = false
		return nil
	}
	var victims []*entry
	for el := s.lru.Back(); el != nil && s.usage > s.low; {
		e := el.Value.(*entry)
		el = el.Prev()
		if s.pins[e.hash] > 0 {
			continue
		}
		s.markRemovingLocked(e)
		victims = append(victims, e)
	}
	if s.usage > s.cfg.Quota {
		s.n.over.Add(1)
		if !s.overQuota {
			s.overQuota = true
			s.log.Warn("chunk store over quota: everything left is pinned", "dir", s.cfg.Dir, "usage", s.usage, "quota", s.cfg.Quota)
		}
	} else {
		s.overQuota = false
	}
	return victims
}

// removeVictims unlinks evicted chunks outside mu. A reader that already opened
// one keeps reading the complete file: an unlinked file lives on while open.
func (s *Store) removeVictims(victims []*entry) {
	for _, e := range victims {
		if err := s.unlink(e); err != nil {
			s.log.Error("chunk store: evicting", "err", err)
		}
		s.n.evictions.Add(1)
		s.n.evictedBytes.Add(e.size)
		s.forget(e)
		s.notifyRemoved(e.hash)
	}
}

func (s *Store) unlink(e *entry) error {
	err := os.Remove(s.path(e.hash))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// removeListener is one OnRemove registration.
type removeListener struct {
	fn        func(h core.Hash)
	cancelled atomic.Bool // set by cancel, so a snapshot taken before it skips fn
}

// OnRemove registers fn to be called once for every chunk that stops being
// present: Delete, eviction for quota, and a chunk a read found corrupt or
// missing on disk. It lets the swarm keep the set of chunks it advertises
// truthful (and send DONT_HAVE). Writes that fail, and so never made a chunk
// present, are not reported, and neither is Close.
//
// fn runs on the goroutine doing the removal (a Put that evicts, a Get that
// found damage, Delete, Unpin), after the file is unlinked and the chunk has
// left the index, with no store lock held: it may call Has, Pin, Put and the
// rest. It is called even if unlinking failed, since the store no longer
// serves the chunk either way. It should be quick, as the caller waits for it.
// A concurrent Put may have stored h again by the time fn runs; a listener
// that mirrors the store's contents can check Has.
//
// cancel unregisters fn; fn is not called for removals after cancel returns,
// though a call already under way on another goroutine may still finish.
// Calling cancel more than once is harmless.
func (s *Store) OnRemove(fn func(h core.Hash)) (cancel func()) {
	l := &removeListener{fn: fn}
	s.lmu.Lock()
	s.listeners = append(slices.Clip(s.listeners), l)
	s.lmu.Unlock()
	return func() {
		if l.cancelled.Swap(true) {
			return
		}
		s.lmu.Lock()
		defer s.lmu.Unlock()
		if i := slices.Index(s.listeners, l); i >= 0 {
			s.listeners = slices.Delete(slices.Clone(s.listeners), i, i+1)
		}
	}
}

// notifyRemoved tells the OnRemove listeners that h is no longer present. The
// caller must not hold mu.
func (s *Store) notifyRemoved(h core.Hash) {
	s.lmu.Lock()
	ls := s.listeners
	s.lmu.Unlock()
	for _, l := range ls {
		if !l.cancelled.Load() {
			l.fn(h)
		}
	}
}
