package policy

import (
	"fmt"
	"strings"
)

// Mode is how a session uses peers: the switch the operator's policy (kill
// switch, leech-only on metered networks or battery) turns. The session and
// the simulator both ask a Mode which sources it allows, so the rule lives
// here once.
type Mode uint8

// The modes. The zero value is ModeOn.
const (
	// ModeOn fetches from peers and the origin and uploads to peers.
	ModeOn Mode = iota
	// ModeLeechOnly fetches from peers and the origin but uploads nothing:
	// every peer is choked and its requests are rejected.
	ModeLeechOnly
	// ModeOff moves no chunk data between peers in either direction: every
	// wanted chunk comes from the origin.
	ModeOff
)

var modeNames = [...]string{ModeOn: "on", ModeLeechOnly: "leech-only", ModeOff: "off"}

// String is the mode's name as flags and policy documents spell it.
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode reads a mode's name ("on", "leech-only", "off"; case and
// surrounding spaces do not matter).
func ParseMode(s string) (Mode, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for m, name := range modeNames {
		if t == name {
			return Mode(m), nil
		}
	}
	return ModeOn, fmt.Errorf("P2P mode %q: want one of on, leech-only, off", s)
}

// Valid reports whether m is one of the defined modes.
func (m Mode) Valid() bool { return int(m) < len(modeNames) }

// FetchFromPeers reports whether chunks may be requested from peers in m.
func (m Mode) FetchFromPeers() bool { return m == ModeOn || m == ModeLeechOnly }

// UploadToPeers reports whether peers may be unchoked and served in m.
func (m Mode) UploadToPeers() bool { return m == ModeOn }

// Stricter is the stricter of m and o: a peer's own setting may only
// tighten what the operator allows.
func (m Mode) Stricter(o Mode) Mode { return max(m, o) }
