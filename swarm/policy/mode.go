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

// Shares reports whether a connected peer that fetches the whole content
// can be waited on to pass on what it fetches from the origin, as a
// designee (Ahead counts only those). A peer that uploads nothing (its
// mode is off or leech-only) offers no chunk (offered == 0) and either is
// not interested in ours though we hold some (off), or took chunks from us
// (tookFromUs) without announcing any (leech-only): waiting for it would
// only delay the takeover. A sharing newcomer's INTERESTED or HAVE may
// still be on its way; misjudging it costs at most a chunk fetched from
// the origin twice.
func Shares(offered int, interested, tookFromUs, weHold bool) bool {
	if offered > 0 || !weHold {
		return true
	}
	return interested && !tookFromUs
}
