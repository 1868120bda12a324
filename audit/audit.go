// Package audit records security-relevant events — a token refused, an
// announce rejected and why, a ban, a report, a join or leave, an admin
// action — so that an operator can reconstruct who did what.
//
// Engines and roles emit Events to a Sink; they never format or store them.
// The JSON-lines sink with pseudonymised addresses and size rotation lives in
// this package too (see Writer).
package audit

import "time"

// Kinds of event. A Kind is a short dotted name, stable across releases, so
// that log pipelines can filter on it.
const (
	KindTokenRefused     = "token.refused"     // a token was missing, expired, forged or out of scope
	KindAnnounceRejected = "announce.rejected" // the tracker refused an announce (Reason says why)
	KindJoin             = "swarm.join"        // a peer joined a swarm
	KindLeave            = "swarm.leave"       // a peer left a swarm (stopped or expired)
	KindBan              = "peer.ban"          // a peer was banned (Reason: the offence)
	KindUnban            = "peer.unban"        // a ban expired or was lifted
	KindReport           = "peer.report"       // a peer reported another's offence
	KindRevoked          = "content.revoked"   // a revocation list named a key or content
	KindAdmin            = "admin"             // an admin action (Reason: which)
	KindPeerRefused      = "peer.refused"      // a peer refused another in the handshake
)

// Event is one audit record. Zero fields are omitted from the log. IP is the
// remote address as seen; a Writer pseudonymises it before it is stored.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Tenant  string    `json:"tenant,omitempty"`
	Content string    `json:"content,omitempty"` // content or channel ID
	Peer    string    `json:"peer,omitempty"`    // peer ID the event is about
	By      string    `json:"by,omitempty"`      // peer ID or key that acted (reporter, admin)
	IP      string    `json:"ip,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Until   time.Time `json:"until,omitzero"` // bans: when the ban expires
}

// Sink receives events. Record must be safe for concurrent use and must not
// block on I/O for long: it is called on request paths.
type Sink interface {
	Record(Event)
}

// Discard is a Sink that drops every event: the default when no audit log is
// configured.
type Discard struct{}

// Record implements Sink.
func (Discard) Record(Event) {}

// SinkFunc adapts a function to a Sink (tests collect events with it).
type SinkFunc func(Event)

// Record implements Sink.
func (f SinkFunc) Record(e Event) { f(e) }

// OrDiscard returns s, or Discard when s is nil, so a Config field left zero
// costs nothing.
func OrDiscard(s Sink) Sink {
	if s == nil {
		return Discard{}
	}
	return s
}
