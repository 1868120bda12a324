package swarm

import (
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/wire"
)

// Range is a half-open range [From, To) of global chunk indexes.
type Range struct{ From, To int }

// Interest is one reader's claim on chunks of an on-demand session: a byte
// range and its read-ahead, a rendition's segments from the play position,
// a file being fetched. The session fetches the union of its Interests,
// rarest first, and nothing else; a chunk stays wanted while any Interest
// covers it. Readers move their Interest as they go (Set) and Release it
// when done. In a session that fetches the whole content, Interests change
// nothing but deadlines: releasing one clears the deadlines it set.
type Interest struct {
	s        *Session
	peerOnly bool    // WantFromPeers: never a reason for an origin fetch before it is urgent
	ranges   []Range // guarded by s.mu
	done     bool    // guarded by s.mu
}

// Want registers an Interest in rs (chunks whose file's hash layer is not
// loaded are wanted too, but not fetched until it is: see SetLayer).
func (s *Session) Want(rs ...Range) *Interest {
	in := &Interest{s: s}
	in.Set(rs...)
	return in
}

// WantFromPeers registers an Interest that peers serve: a reader's
// look-ahead, worth fetching early from a peer that has it, but not worth
// an origin fetch the reader may never need. Its chunks go to the origin
// only once their deadline is urgent, or when another Interest covers them.
func (s *Session) WantFromPeers(rs ...Range) *Interest {
	in := &Interest{s: s, peerOnly: true}
	in.Set(rs...)
	return in
}

// Set replaces the Interest's ranges. A released Interest stays released.
func (in *Interest) Set(rs ...Range) {
	s := in.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.done {
		return
	}
	old := in.ranges
	in.ranges = make([]Range, 0, len(rs))
	for _, r := range rs {
		r.From, r.To = max(r.From, 0), min(r.To, s.c.Len())
		if r.From < r.To {
			in.ranges = append(in.ranges, r)
		}
	}
	// Add before removing, so chunks in both stay wanted throughout.
	for _, r := range in.ranges {
		s.addWantLocked(r, 1, in.peerOnly)
	}
	for _, r := range old {
		s.addWantLocked(r, -1, in.peerOnly)
	}
	s.kickLocked()
}

// Release withdraws the Interest. Calling it again does nothing.
func (in *Interest) Release() {
	s := in.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.done {
		return
	}
	in.done = true
	for _, r := range in.ranges {
		s.addWantLocked(r, -1, in.peerOnly)
	}
	in.ranges = nil
}

// addWantLocked adds d to the reference count of each chunk of r and tells
// the picker when a chunk becomes wanted or unwanted, or wanted from peers
// only.
func (s *Session) addWantLocked(r Range, d int32, peerOnly bool) {
	for i := r.From; i < r.To; i++ {
		s.wantRef[i] += d
		if !peerOnly {
			s.originRef[i] += d
		}
		s.picker.SetPeerOnly(i, s.cfg.OnDemand && s.originRef[i] == 0 && s.wantRef[i] > 0)
		if s.wantRef[i] == 0 {
			s.picker.ClearDeadline(i) // nobody waits for it any more
		}
		s.syncWantLocked(i)
	}
}

// syncWantLocked puts chunk i in or out of the picker's wanted set — in
// when its hash is known and, on demand, an Interest covers it — and keeps
// each peer's count of useful chunks in step.
func (s *Session) syncWantLocked(i int) {
	on := s.c.Known(i) && (!s.cfg.OnDemand || s.wantRef[i] > 0)
	if s.picker.Wanted(i) == on {
		return
	}
	s.picker.SetWant(i, on)
	if s.picker.Has(i) {
		return
	}
	for _, p := range s.peers {
		if p.bits.Has(i) {
			if on {
				p.useful++
			} else {
				p.useful--
			}
			s.updateInterestLocked(p)
		}
	}
}

// kickLocked tops up every peer's requests at once rather than at the next
// tick, so a reader's new wants go out without a tick's delay.
func (s *Session) kickLocked() {
	now := s.cfg.Clock.Now()
	for _, p := range s.peers {
		s.topUpLocked(p, now)
	}
}

// fetchAllLocked says whether we fetch every chunk, as the handshake's
// FlagFetchAll tells peers. O(chunks), once per handshake.
func (s *Session) fetchAllLocked() bool {
	if !s.cfg.OnDemand {
		return true
	}
	for _, r := range s.wantRef {
		if r == 0 {
			return false
		}
	}
	return true
}

// SetLayer records file fi's verified hash layer: its chunks can now be
// fetched, and those already in the store (a restart, or identical chunks
// of another content) count as held and are announced to peers.
func (s *Session) SetLayer(fi int, l []core.Hash) error {
	if s.c.HasLayer(fi) {
		return nil
	}
	if err := s.c.SetLayer(fi, l); err != nil {
		return err
	}
	s.markStoredFile(fi)
	s.mu.Lock()
	defer s.mu.Unlock()
	from, to := s.c.FileChunks(fi)
	for i := from; i < to; i++ {
		s.syncWantLocked(i)
	}
	s.kickLocked()
	return nil
}

// markStoredFile marks the chunks of file fi that the store holds as held.
func (s *Session) markStoredFile(fi int) {
	from, to := s.c.FileChunks(fi)
	var held []int
	for i := from; i < to; i++ {
		if s.cfg.Store.Has(s.c.Hash(i)) {
			held = append(held, i)
		}
	}
	if len(held) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now()
	for _, i := range held {
		// Checked again under mu: a removal since would have found the
		// chunk not held and left it to us.
		if !s.picker.Has(i) && s.cfg.Store.Has(s.c.Hash(i)) {
			s.receivedLocked(i, "", now)
		}
	}
}

// removed is the store's removal notification: a chunk we hold left the
// cache (evicted for quota, found corrupt on read, purged). The have-set
// forgets it, peers are told (DONT_HAVE) so they stop asking, and it is
// fetched again if a reader still wants it.
func (s *Session) removed(h core.Hash) {
	idx := s.c.Indexes(h)
	if len(idx) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Store.Has(h) {
		return // stored again since (a concurrent Put): still held
	}
	for _, i := range idx {
		if !s.picker.Has(i) {
			continue
		}
		s.picker.Lost(i)
		s.lost.Add(1)
		wanted := s.picker.Wanted(i)
		for _, p := range s.peers {
			if wanted && p.bits.Has(i) {
				p.useful++
				s.updateInterestLocked(p)
			}
			p.send(&wire.DontHave{Index: uint32(i)})
		}
	}
	s.checkCompleteLocked()
}

// Forget drops chunk i from the have-set if the store no longer holds it:
// for a reader that found it gone before the store's removal notice came.
func (s *Session) Forget(i int) {
	if s.c.Known(i) {
		s.removed(s.c.Hash(i))
	}
}

// PeersWith is how many connected peers say they hold chunk i.
func (s *Session) PeersWith(i int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.picker.Availability().Count(i)
}
