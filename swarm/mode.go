package swarm

import "github.com/shoal-cdn/shoal/swarm/policy"

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
// goroutine. Off cancels every request in flight to peers (their chunks go
// to the origin lane now), chokes every peer and rejects their requests;
// leech-only chokes and rejects but keeps fetching from peers; on resumes
// the picker and the choker at once.
func (s *Session) SetMode(m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
}
