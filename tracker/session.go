package tracker

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cdn/shoal/discovery"
)

// Session tickets spare the tracker an Ed25519 verification per announce.
// Once a peer's signed announce verifies, the answer carries a ticket: an
// expiry and a key derived from the tracker's secret K, the peer ID and that
// expiry. The peer's next announces carry a MAC made with that key instead
// of a signature; the tracker derives the key again and checks the MAC, so
// it keeps nothing per ticket, and replicas that share K accept each other's
// tickets. A ticket is only ever issued to a peer that proved it holds the
// key of its peer ID, so an announce with a valid MAC proves as much.

// resultTicket labels announces refused for their session ticket (expired,
// or a MAC that does not verify) in shoal_tracker_announces_total: mostly
// routine (a restart with a new secret, a ticket past its end), the peer
// signs its next announce.
const resultTicket = "ticket"

// sessionDomain starts the key derivation, so a ticket key can never be
// mistaken for any other use of K.
const sessionDomain = "shoal session v1\n"

// sessions issues and checks session tickets. It is safe for concurrent use.
type sessions struct {
	ttl  time.Duration    // ticket lifetime; 0: tickets off
	skew time.Duration    // announce clock skew: a ticket's exp may lie at most ttl+skew ahead
	k    discovery.MACKey // K's HMAC pads, made once: read only while serving

	issued, accepted prometheus.Counter
}

func newSessions(secret []byte, ttl, skew time.Duration, reg prometheus.Registerer) *sessions {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_tracker_session_tickets_total",
		Help: "Session tickets issued (after a verified signature) and announces whose ticket MAC verified in place of a signature.",
	}, []string{"event"})
	reg.MustRegister(c)
	s := &sessions{ttl: ttl, skew: skew, issued: c.WithLabelValues("issued"), accepted: c.WithLabelValues("accepted")}
	s.setSecret(secret)
	return s
}

// setSecret replaces K. Only before the tracker serves: tickets made with
// the old K stop verifying.
func (s *sessions) setSecret(secret []byte) {
	s.k.Set(secret)
}

// on reports whether the tracker issues and accepts tickets.
func (s *sessions) on() bool { return s.ttl > 0 }

// key derives the ticket key of peer for exp:
// HMAC-SHA256(K, domain || uvarint(len(peer)) || peer || uint64be(exp)).
func (s *sessions) key(peer string, exp int64) []byte {
	k := s.keyArray(peer, exp)
	return append(make([]byte, 0, discovery.SessionKeyLen), k[:]...)
}

// keyArray is key without allocating.
func (s *sessions) keyArray(peer string, exp int64) [sha256.Size]byte {
	var buf [len(sessionDomain) + binary.MaxVarintLen64 + discovery.MaxPeerIDLen + 8]byte
	b := append(buf[:0], sessionDomain...)
	b = binary.AppendUvarint(b, uint64(len(peer)))
	b = append(b, peer...)
	b = binary.BigEndian.AppendUint64(b, uint64(exp))
	return s.k.Sum(b)
}

// verify checks an announce that carries a MAC instead of a signature.
func (s *sessions) verify(req *discovery.AnnounceRequest, now time.Time) error {
	if !s.on() {
		return fmt.Errorf("%w: this tracker issues no session tickets", discovery.ErrSessionInvalid)
	}
	if req.SessExp > now.Add(s.ttl+s.skew).Unix() {
		// Not one of ours: no ticket lives that long.
		return fmt.Errorf("%w: ticket of peer %s expires %s, later than any this tracker issues",
			discovery.ErrSessionInvalid, req.Peer, time.Unix(req.SessExp, 0).UTC().Format(time.RFC3339))
	}
	key := s.keyArray(req.Peer, req.SessExp)
	var mk discovery.MACKey
	mk.Set(key[:])
	if err := req.VerifyMACKey(&mk, now, s.skew); err != nil {
		return err
	}
	s.accepted.Inc()
	return nil
}

// issue returns a fresh ticket for peer, or nil when tickets are off or the
// peer's current ticket (expiring at exp; 0: none) has more than a third of
// its life left.
func (s *sessions) issue(peer string, exp int64, now time.Time) *discovery.Session {
	if !s.on() || exp != 0 && time.Unix(exp, 0).Sub(now) > s.ttl/3 {
		return nil
	}
	exp = now.Add(s.ttl).Unix()
	s.issued.Inc()
	return &discovery.Session{Exp: exp, Key: s.key(peer, exp)}
}

// newSessionKey returns n random bytes for a tracker's session secret.
func newSessionKey(n int) []byte {
	k := make([]byte, n)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go 1.24+)
	return k
}
