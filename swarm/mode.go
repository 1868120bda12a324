package swarm

import (
	"github.com/shoal-cdn/shoal/swarm/policy"
	"github.com/shoal-cdn/shoal/wire"
)

// Mode is how a session uses peers (see policy.Mode): on, leech-only
// (fetch from peers, upload nothing) or off (origin only).
type Mode = policy.Mode

// The modes (policy.ModeOn and so on); the zero value is ModeOn.
const (
	ModeOn        = policy.ModeOn
	ModeLeechOnly = policy.ModeLeechOnly
	ModeOff       = policy.ModeOff
)

// ParseMode reads a mode's name: "on", "leech-only" or "off".
func ParseMode(s string) (Mode, error) { return policy.ParseMode(s) }

// Mode is the session's current P2P mode.
func (s *Session) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// SetMode switches how the session uses peers, at once and from any
// goroutine; an unknown mode counts as ModeOff.
//
// Off and leech-only choke every peer, drop what they had queued with us
// and reject their requests, and stop advertising what we hold (an empty
// BITFIELD, then no HAVE): a chunk we would not serve must not look
// available to the swarm, or its peers would wait for it instead of going
// to the origin. Off also cancels every request in flight to peers (CANCEL)
// and hands those chunks to the origin lane now, with the session's
// deadlines and origin caps; DATA that still arrives for them is dropped
// unread, and nothing is requested from peers until the mode changes. Back
// on, the full bitfield goes out again, the choker's picks are unchoked
// and the picker asks peers at once.
func (s *Session) SetMode(m Mode) {
	if !m.Valid() {
		m = ModeOff
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.mode
	if m == old {
		return
	}
	s.mode = m
	s.picker.SetMode(m)
	now := s.cfg.Clock.Now()
	if !m.FetchFromPeers() {
		for _, p := range s.peers {
			for i := range p.requested {
				s.picker.Failed(i, p.key)
				p.send(&wire.Cancel{Index: uint32(i), Length: uint32(s.c.Size(i))})
			}
			clear(p.requested)
		}
	}
	// Choke (which drops their queued requests) before the bitfield that
	// takes our chunks off offer.
	s.rechokeLocked(now)
	if old.UploadToPeers() != m.UploadToPeers() {
		bits := s.advertisedLocked()
		for _, p := range s.peers {
			p.send(&wire.BitfieldUpdate{Bits: bits})
		}
	}
	for _, p := range s.peers {
		s.updateInterestLocked(p)
	}
	s.log.Info("P2P mode", "from", old, "to", m)
	s.kickLocked()
	s.originLaneLocked(now)
}

// advertisedLocked is the bitfield peers are told we hold: every chunk
// held while the mode uploads, none while it does not.
func (s *Session) advertisedLocked() *wire.Bitfield {
	b := wire.NewBitfield(s.c.Len())
	if !s.mode.UploadToPeers() {
		return b
	}
	for i := range s.c.Len() {
		if s.picker.Has(i) {
			b.Set(i)
		}
	}
	return b
}
