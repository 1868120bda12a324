package tracker

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cdn/shoal/core"
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
//
// On a tracker that checks tokens (Config.Authorize) and opted into reusing
// their verdicts (Config.Regrant), the ticket of a signed announce whose
// token was granted also carries the token's verdict: the Grant (root key,
// tenant, region, regions; grant.go), opaque to the peer, bound into
// the key with the content ID under another domain (sessionDomainV2), and an
// exp no later than the grant's Expiry. The peer's MACed announces of that
// content send the grant instead of the token; the tracker derives the key
// from what the announce carries, so a grant it did not issue, or issued
// for another peer, content or exp, fails the MAC like any forgery, and
// then reads the grant back without the token, its decode or its cache,
// and asks Config.Regrant whether it still stands: TokenRegrant refuses it
// once the grant's root key is no longer trusted. What a grant cannot see
// is anything else that changed after the token was checked (a token
// superseded by another, or, for a custom Authorizer, the peer's address or
// the Authorizer's state): it holds until the ticket's exp (at most
// Config.SessionTTL) and no longer; the next signed announce is checked
// afresh. Tickets without a grant (no Authorize or no Regrant, or a grant
// that does not encode) keep the first derivation, and their announces
// carry the token and are checked as before, so replicas of either build
// sharing K accept each other's tickets: an older replica refuses a
// grant-bearing ticket's MAC (it derives the first key), and the peer signs
// again.

// resultTicket labels announces refused for their session ticket (expired,
// or a MAC that does not verify) in shoal_tracker_announces_total: mostly
// routine (a restart with a new secret, a ticket past its end), the peer
// signs its next announce.
const resultTicket = "ticket"

// sessionDomain starts the key derivation, so a ticket key can never be
// mistaken for any other use of K.
const sessionDomain = "shoal session v1\n"

// sessionDomainV2 starts the derivation of a ticket key that binds a
// content ID and a grant.
const sessionDomainV2 = "shoal session v2\n"

// sessions issues and checks session tickets. It is safe for concurrent use.
type sessions struct {
	ttl  time.Duration    // ticket lifetime; 0: tickets off
	skew time.Duration    // announce clock skew: a ticket's exp may lie at most ttl+skew ahead
	k    discovery.MACKey // K's HMAC pads, made once: read only while serving

	grants *grantCache // grants of verified tickets, decoded once

	issued, accepted prometheus.Counter
	granted          prometheus.Counter // accepted on a ticket's grant, without the token
}

func newSessions(secret []byte, ttl, skew time.Duration, reg prometheus.Registerer) *sessions {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_tracker_session_tickets_total",
		Help: "Session tickets issued (after a verified signature), announces whose ticket MAC verified in place of a signature (accepted), and of those the ones taken on the ticket's grant instead of a token check (granted).",
	}, []string{"event"})
	reg.MustRegister(c)
	s := &sessions{ttl: ttl, skew: skew, grants: newGrantCache(), issued: c.WithLabelValues("issued"),
		accepted: c.WithLabelValues("accepted"), granted: c.WithLabelValues("granted")}
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

// keyV2 derives the key of a ticket of peer for exp that binds content and
// grant (its encoding, grant.go):
// HMAC-SHA256(K, domainV2 || uvarint(len(peer)) || peer || uint64be(exp) ||
// content || uvarint(len(grant)) || grant).
func (s *sessions) keyV2(peer string, exp int64, content core.ContentID, grant []byte) [sha256.Size]byte {
	var buf [len(sessionDomainV2) + binary.MaxVarintLen64 + discovery.MaxPeerIDLen + 8 + len(core.ContentID{}) + binary.MaxVarintLen64 + 320]byte
	b := append(buf[:0], sessionDomainV2...)
	b = binary.AppendUvarint(b, uint64(len(peer)))
	b = append(b, peer...)
	b = binary.BigEndian.AppendUint64(b, uint64(exp))
	b = append(b, content[:]...)
	b = binary.AppendUvarint(b, uint64(len(grant)))
	b = append(b, grant...) // a grant of over 320 bytes moves b to the heap
	return s.k.Sum(b)
}

// verify checks an announce that carries a MAC instead of a signature: a
// ticket with a grant (req.Grant set) by the key that binds it, one
// without by the first derivation.
func (s *sessions) verify(req *discovery.AnnounceRequest, now time.Time) error {
	if !s.on() {
		return fmt.Errorf("%w: this tracker issues no session tickets", discovery.ErrSessionInvalid)
	}
	if req.SessExp > now.Add(s.ttl+s.skew).Unix() {
		// Not one of ours: no ticket lives that long.
		return fmt.Errorf("%w: ticket of peer %s expires %s, later than any this tracker issues",
			discovery.ErrSessionInvalid, req.Peer, time.Unix(req.SessExp, 0).UTC().Format(time.RFC3339))
	}
	var key [sha256.Size]byte
	if len(req.Grant) > 0 {
		key = s.keyV2(req.Peer, req.SessExp, req.Content, req.Grant)
	} else {
		key = s.keyArray(req.Peer, req.SessExp)
	}
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
// its life left. The ticket carries no grant: its announces carry the token.
func (s *sessions) issue(peer string, exp int64, now time.Time) *discovery.Session {
	if !s.on() || exp != 0 && time.Unix(exp, 0).Sub(now) > s.ttl/3 {
		return nil
	}
	exp = now.Add(s.ttl).Unix()
	s.issued.Inc()
	return &discovery.Session{Exp: exp, Key: s.key(peer, exp)}
}

// issueGrant returns a fresh ticket for peer's announces of content that
// carries g, the grant of the token its signed announce presented: its exp
// is the TTL's or g.Expiry, whichever comes first. A grant that does not
// encode, or ends within the second, gets a ticket without one (issue).
// Nil when tickets are off.
func (s *sessions) issueGrant(peer string, content core.ContentID, g *Grant, now time.Time) *discovery.Session {
	if !s.on() {
		return nil
	}
	exp := now.Add(s.ttl).Unix()
	if !g.Expiry.IsZero() {
		exp = min(exp, g.Expiry.Unix())
	}
	if exp <= now.Unix() || !g.encodable() {
		return s.issue(peer, 0, now)
	}
	enc := appendGrant(nil, g)
	key := s.keyV2(peer, exp, content, enc)
	s.issued.Inc()
	return &discovery.Session{Exp: exp, Key: append(make([]byte, 0, discovery.SessionKeyLen), key[:]...), Grant: enc}
}

// newSessionKey returns n random bytes for a tracker's session secret.
func newSessionKey(n int) []byte {
	k := make([]byte, n)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go 1.24+)
	return k
}
