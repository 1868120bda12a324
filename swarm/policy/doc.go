// Package policy is the pure decision core of Shoal's swarm engine: which
// chunk to ask which peer for (Picker, Availability), which chunks must go to
// the origin instead (Picker.OriginFallback), whom to upload to (Choker), how
// fast a link is (Rate), how many requests to keep in flight (PipelineDepth,
// RequestDepth), which origin fetches are ours and when to take over another
// peer's (OriginLane, Ahead) and how to pace uploads under a cap
// (TokenBucket), and which sources a session's P2P mode allows (Mode,
// Shares). control.go holds the session's control-loop defaults (grace,
// assumed rate, tick, pipelining, takeover wait, announce interval): the one
// place swarm.Session and the simulator take them from. playback.go holds
// the gateway's playback rules (start-up segments, deadlines from the
// player's buffer, look-ahead, late fallback, live-edge slack), which the
// peer's gateway and the simulator's viewers both run.
//
// Nothing here touches the network, starts goroutines or reads the wall
// clock: every decision takes the current time as an argument and every
// random choice comes from an injected *rand.Rand. That is what lets the peer
// session code and the discrete-event simulator run the very same policy;
// there is never a second implementation. None of the types are safe for
// concurrent use: each belongs to one session or one simulated peer, which
// serialises calls itself.
//
// Any package above core may import policy; policy imports only the standard
// library.
package policy

// PeerKey identifies a remote peer. It is opaque to the policy code: the
// session uses the libp2p peer ID, the simulator a node number. The empty key
// is reserved for the origin (see Origin).
type PeerKey string

// Origin is the PeerKey under which a request to the HTTP origin is recorded
// with Picker.Requested, so the picker knows the chunk is taken care of.
const Origin PeerKey = ""
