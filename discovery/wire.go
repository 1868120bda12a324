package discovery

import (
	"encoding/json"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// AnnouncePath is the tracker's announce endpoint, relative to its base URL.
const AnnouncePath = "/announce"

// Limits on an announce request. They bound what one request can make the
// tracker store and hand to other peers, so a single client cannot bloat every
// response of a swarm.
const (
	MaxBodyBytes  = 64 << 10 // request body
	MaxPeerIDLen  = 128      // libp2p IDs are ~52 characters
	MaxAddrs      = 16       // listen addresses per peer
	MaxAddrLen    = 256      // bytes of one multiaddr string
	MaxRegionLen  = 64       // bytes of the region label
	MaxNumWant    = 1000     // hard ceiling; the tracker applies its own, lower cap
	MaxTokenLen   = 4 << 10  // bytes of the access token
	MaxGrantLen   = 4 << 10  // bytes of a session ticket's grant
	MaxSigLen     = 256      // bytes of the announce signature (Ed25519: 64)
	MACLen        = 32       // bytes of an announce MAC (HMAC-SHA256)
	SessionKeyLen = 32       // bytes of a session ticket's key
	MaxRespBytes  = 4 << 20  // response body the client will read
	maxErrorBytes = 4 << 10  // error body the client will quote
)

// Event says why a peer announces. The zero value is a regular re-announce.
type Event string

// The announce events, as in BitTorrent.
const (
	EventNone      Event = ""
	EventStarted   Event = "started"   // first announce of a session
	EventCompleted Event = "completed" // the peer just finished the content
	EventStopped   Event = "stopped"   // the peer leaves; the tracker forgets it
)

// AnnounceRequest is the JSON body of POST /announce. Unknown fields are
// ignored so that newer peers can add fields (telemetry) without breaking
// older trackers; the known ones are validated by Validate.
type AnnounceRequest struct {
	Content    core.ContentID `json:"content"`
	Peer       string         `json:"peer"`            // libp2p peer ID
	Addrs      []string       `json:"addrs,omitempty"` // multiaddrs the peer listens on
	Uploaded   int64          `json:"uploaded"`        // bytes, cumulative this session
	Downloaded int64          `json:"downloaded"`      // bytes, cumulative this session
	Left       int64          `json:"left"`            // bytes still missing; 0 = seed
	Region     string         `json:"region,omitempty"`
	Event      Event          `json:"event,omitempty"`
	// NumWant asks for at most this many peers; 0 means the tracker's default.
	NumWant int    `json:"numwant,omitempty"`
	Token   string `json:"token,omitempty"` // access token; trackers that require none ignore it
	// TS is when the peer signed the announce, in Unix milliseconds; the
	// tracker refuses stale ones so a captured announce cannot be replayed.
	TS int64 `json:"ts,omitempty"`
	// Sig is the peer's signature over SigningBytes, made with the private
	// key its peer ID embeds (see Sign).
	Sig []byte `json:"sig,omitempty"`
	// SessExp and MAC replace Sig for a peer holding a session ticket (see
	// Session): SessExp is the ticket's exp, MAC is HMAC-SHA256 with the
	// ticket's key over SigningBytes (see MACWith).
	SessExp int64  `json:"sess_exp,omitempty"`
	MAC     []byte `json:"mac,omitempty"`
	// Grant, sent only with a MAC, is the grant of the session ticket the
	// MAC was made with (Session.Grant), in place of Token: the tracker
	// checked the token when it issued the ticket, and the ticket's key
	// binds the grant, so the token need not travel again while the
	// ticket lives.
	Grant []byte `json:"grant,omitempty"`
	// PolicySerial is the serial of the operator policy the peer holds (0:
	// none); the tracker sends its own with the answer when it is newer.
	PolicySerial uint64 `json:"policy_serial,omitempty"`
}

// AnnounceResponse is the tracker's answer to a valid announce.
type AnnounceResponse struct {
	// IntervalS is when to announce next, in seconds (jittered per response so
	// a flash crowd does not re-announce in lock-step). Fractions are allowed.
	IntervalS float64 `json:"interval_s"`
	// MinIntervalS is the shortest re-announce interval the tracker accepts
	// without treating the peer as abusive, in seconds.
	MinIntervalS float64 `json:"min_interval_s,omitempty"`
	// Peers are other peers of the swarm, same region first; never the asker.
	Peers []PeerInfo `json:"peers"`
	// Session, when set, is a session ticket: until Exp the peer may
	// authenticate its announces to this tracker with a MAC instead of a
	// signature. The tracker hands one out after a verified signature, and a
	// fresh one when the current one nears its end.
	Session *Session `json:"session,omitempty"`
	// Policy, when set, is the operator's signed policy (control.Policy,
	// its canonical encoding verbatim), newer than the PolicySerial the
	// peer announced. The peer checks it against its operator keys.
	Policy json.RawMessage `json:"policy,omitempty"`
}

// PolicyPath is the tracker's policy endpoint, relative to its base URL:
// GET answers the current signed policy (404 when there is none);
// ?after=SERIAL holds the request (long poll, up to PolicyWait) until the
// policy's serial is above SERIAL, then answers it, or answers 204 No
// Content when the wait ends first. Peers keep one such request open, so
// a kill switch reaches them within a round trip.
const PolicyPath = "/policy"

// PolicyWait is how long the tracker holds a policy long poll at most.
const PolicyWait = 25 * time.Second

// Session is a session ticket. The tracker derives Key from its own secret,
// the peer ID and Exp, and keeps nothing per ticket; Key is a secret shared
// with the peer it was issued to, so a tracker handing out tickets must be
// reached over TLS.
//
// A tracker that checks access tokens issues, after a signed announce whose
// token it accepted, a ticket that carries the token's verdict: Grant, opaque
// to the peer (at most MaxGrantLen bytes), which the tracker also binds into
// Key along with the content ID, and an Exp no later than the token's own
// expiry. The peer's MACed announces of that content then send Grant instead
// of the token (see MACWith), and the tracker skips the token check. A new
// token means new tickets: the peer drops its tickets when its token changes.
type Session struct {
	Exp   int64  `json:"exp"`             // Unix seconds after which the ticket is refused
	Key   []byte `json:"key"`             // SessionKeyLen bytes, base64 on the wire
	Grant []byte `json:"grant,omitempty"` // the token's verdict, for the tracker to read back; nil: none
}

// Expiry returns Exp as a time.
func (s Session) Expiry() time.Time { return time.Unix(s.Exp, 0) }

// Interval returns IntervalS as a duration (0 if unset or invalid).
func (r AnnounceResponse) Interval() time.Duration { return secondsToDuration(r.IntervalS) }

// MinInterval returns MinIntervalS as a duration (0 if unset or invalid).
func (r AnnounceResponse) MinInterval() time.Duration { return secondsToDuration(r.MinIntervalS) }

// PeerInfo is one peer of a swarm as the tracker hands it out.
type PeerInfo struct {
	Peer   string   `json:"peer"`
	Addrs  []string `json:"addrs"`
	Region string   `json:"region,omitempty"`
	Seed   bool     `json:"seed,omitempty"`
	// Encoded, when set, is this PeerInfo as AppendJSON writes it, which
	// AnnounceResponse.AppendJSON then copies instead of encoding it again:
	// a tracker keeps it with each peer it hands out many times. Whoever
	// sets it keeps it in step with the fields.
	Encoded []byte `json:"-"`
}

// Seconds converts d to the float seconds used on the wire, rounded to the
// millisecond so responses stay short.
func Seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

func secondsToDuration(s float64) time.Duration {
	// Guard against NaN, negatives and absurd values from a broken tracker.
	if !(s > 0) || s > 7*24*3600 {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}
