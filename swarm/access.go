package swarm

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/token"
	"github.com/shoal-cdn/shoal/wire"
)

// ErrRefused means a peer's access token was missing or did not verify for
// this swarm; the stream was reset before any bitfield or chunk moved.
var ErrRefused = errors.New("peer refused")

// Access is a session's token policy. A nil *Access is an open swarm: no
// token is presented and none is asked for.
//
// When Token is set the session presents it in every handshake (and sends a
// changed one to connected peers as a refresh); when Require is set it
// checks the remote's token before it sends its bitfield, resets the stream
// of a peer whose token is missing or wrong, and closes a connection whose
// token expires without a refresh.
type Access struct {
	// Token returns the token this peer presents, read again on every tick
	// so a refreshed token reaches connected peers without a restart. Nil
	// or "": none. It is called with the session's lock held: keep it cheap.
	Token func() string
	// Verifier checks other peers' tokens; required when Require is set.
	Verifier *token.Verifier
	// Require refuses peers without a valid token for this content.
	Require bool
	// Tenant is the tenant every remote token must name. "": the tenant of
	// our own token when we hold one, else any.
	Tenant string
	// Channel is the live channel the content belongs to, for tokens
	// scoped to a channel.
	Channel manifest.ChannelID
	// Audit receives refusals (audit.KindPeerRefused) and refused refreshes
	// and expiries (audit.KindTokenRefused). Nil: discarded.
	Audit audit.Sink
}

// authEnabled reports whether streams of this session use the token
// handshake (the dialer withholds its bitfield until tokens are checked).
func (s *Session) authEnabled() bool {
	a := s.cfg.Access
	return a != nil && (a.Require || a.Token != nil)
}

func (s *Session) ownToken() string {
	if a := s.cfg.Access; a != nil && a.Token != nil {
		return a.Token()
	}
	return ""
}

// tenant is the tenant remote tokens must name ("" = any).
func (s *Session) tenant() string {
	a := s.cfg.Access
	if a.Tenant != "" {
		return a.Tenant
	}
	if t, err := token.Decode(s.ownToken()); err == nil {
		return t.Tenant
	}
	return ""
}

// admit checks the token a remote presented ("" for none) when this
// session requires tokens. A refusal is audited (audit.KindPeerRefused,
// reason "token <why>"); the caller resets the stream. The claims are nil
// when no check was required.
func (s *Session) admit(tok string, remote netx.PeerID) (*token.Claims, error) {
	a := s.cfg.Access
	if a == nil || !a.Require {
		return nil, nil
	}
	c, err := s.checkToken(tok, remote)
	if err != nil {
		why := "token " + token.Reason(err)
		if now := s.cfg.Clock.Now(); s.refusals.first(remote, why, now) {
			audit.OrDiscard(a.Audit).Record(audit.Event{
				Time: now, Kind: audit.KindPeerRefused, Tenant: s.tenant(),
				Content: s.c.ID.String(), Peer: string(remote), By: string(s.self), Reason: why,
			})
			s.log.Info("peer refused", "peer", remote.Short(), "err", err)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrRefused, remote.Short(), err)
	}
	return c, nil
}

// refusalQuiet is how long after a peer's refusal its further refusals for
// the same reason (a peer retrying stream after stream) go unaudited and
// unlogged, so an unauthenticated peer cannot flood the audit log and push
// older events out of its rotation. maxRefusalLog bounds what is
// remembered.
const (
	refusalQuiet  = time.Minute
	maxRefusalLog = 4096
)

// refusalLog remembers when each peer was last refused, per reason.
type refusalLog struct {
	mu   sync.Mutex
	last map[refusalKey]time.Time // guarded by mu
}

type refusalKey struct {
	peer netx.PeerID
	why  string
}

// first reports whether id's refusal for why at now is the first within
// refusalQuiet, and records it.
func (l *refusalLog) first(id netx.PeerID, why string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := refusalKey{id, why}
	if t, ok := l.last[k]; ok && now.Sub(t) < refusalQuiet {
		return false
	}
	if l.last == nil || len(l.last) >= maxRefusalLog {
		l.last = map[refusalKey]time.Time{} // forget them all: at worst one more event each
	}
	l.last[k] = now
	return true
}

func (s *Session) checkToken(tok string, remote netx.PeerID) (*token.Claims, error) {
	a := s.cfg.Access
	if a.Verifier == nil {
		return nil, fmt.Errorf("%w: this peer has no trusted keys to check tokens with", token.ErrUntrusted)
	}
	m := s.c.Manifest
	subj := token.Subject{
		Content: s.c.ID, Channel: a.Channel, Name: m.Name, Publisher: m.Publisher,
		Peer: string(remote), Tenant: s.tenant(),
	}
	if m.Policy != nil {
		subj.Regions = m.Policy.Regions
	}
	return a.Verifier.Check(tok, subj)
}

// writeHandshake sends our handshake; with tokens, it is followed by our
// Token frame, and a dialer (withhold) sends no bitfield yet. It returns
// the token it presented.
func (s *Session) writeHandshake(st netx.Stream, bits *wire.Bitfield, all, withhold bool) (string, error) {
	hs := s.handshake(bits, all)
	if !s.authEnabled() {
		return "", wire.WriteMessage(st, hs)
	}
	hs.Flags |= wire.FlagToken
	if withhold {
		hs.Bits = wire.NewBitfield(0)
		hs.Flags &^= wire.FlagSeeder
	}
	if err := wire.WriteMessage(st, hs); err != nil {
		return "", err
	}
	tok := s.ownToken()
	return tok, wire.WriteMessage(st, &wire.Token{Token: tok})
}

// readToken reads the Token frame that follows a handshake with FlagToken
// ("" when the handshake has none), within handshakeTimeout.
func readToken(st netx.Stream, r *wire.Reader, hs *wire.Handshake) (string, error) {
	if hs.Flags&wire.FlagToken == 0 {
		return "", nil
	}
	m, err := readFrame(st, r)
	if err != nil {
		return "", err
	}
	t, ok := m.(*wire.Token)
	if !ok {
		return "", fmt.Errorf("%w: %v after a handshake with a token flag, not a token", ErrProtocol, m.Type())
	}
	return t.Token, nil
}

// awaitBitfield reads the bitfield a dialer withheld until our token check
// (its first BitfieldUpdate) into hs.
func awaitBitfield(st netx.Stream, r *wire.Reader, hs *wire.Handshake) error {
	if hs.Flags&wire.FlagToken == 0 {
		return nil
	}
	m, err := readFrame(st, r)
	if err != nil {
		return err
	}
	u, ok := m.(*wire.BitfieldUpdate)
	if !ok {
		return fmt.Errorf("%w: %v where the withheld bitfield was due", ErrProtocol, m.Type())
	}
	hs.Bits = u.Bits
	return nil
}

// attached records, for the peer just attached on st, the token we
// presented to it (so a change is sent as a refresh) and when its token
// expires (so the connection is closed then unless it refreshes).
func (s *Session) attached(st netx.Stream, c *token.Claims, sent string) {
	if s.cfg.Access == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.peers[st.RemotePeer()]; p != nil && p.st == st {
		p.sentToken = sent
		if c != nil {
			p.tokenExpiry = c.Expiry
		}
	}
}

// refreshMinGap bounds how often a peer's token refresh is checked: an
// honest peer refreshes once per token lifetime, and each check costs
// signature verifications under the session's lock.
const refreshMinGap = time.Second

// refreshLocked handles a Token frame on an open stream: the new token
// replaces the old one if it verifies. One that does not is audited and
// ignored; the old one stays in force until it expires. The same token
// again, or a refresh within refreshMinGap of the last, is ignored unchecked.
func (s *Session) refreshLocked(p *peer, tok string) {
	a := s.cfg.Access
	if a == nil || !a.Require {
		return
	}
	now := s.cfg.Clock.Now()
	if tok == p.refreshTok || now.Sub(p.refreshAt) < refreshMinGap {
		return
	}
	p.refreshTok, p.refreshAt = tok, now
	c, err := s.checkToken(tok, p.id)
	if err != nil {
		audit.OrDiscard(a.Audit).Record(audit.Event{
			Time: s.cfg.Clock.Now(), Kind: audit.KindTokenRefused, Tenant: s.tenant(),
			Content: s.c.ID.String(), Peer: string(p.id), By: string(s.self), Reason: "refresh " + token.Reason(err),
		})
		s.log.Info("token refresh refused", "peer", p.id.Short(), "err", err)
		return
	}
	p.tokenExpiry = c.Expiry
}

// accessTick sends our token to connected peers when it changed, and closes
// connections whose token expired without a refresh. Called by tick, without
// the session's lock.
func (s *Session) accessTick() {
	a := s.cfg.Access
	if a == nil {
		return
	}
	var expired []*peer
	s.mu.Lock()
	if a.Token != nil {
		tok := a.Token()
		for _, p := range s.peers {
			if p.sentToken != tok {
				p.sentToken = tok
				p.send(&wire.Token{Token: tok})
			}
		}
	}
	var now time.Time
	if a.Require && a.Verifier != nil {
		now = a.Verifier.Now()
		for _, p := range s.peers {
			if !p.tokenExpiry.IsZero() && !now.Add(-a.Verifier.Skew()).Before(p.tokenExpiry) {
				expired = append(expired, p)
			}
		}
	}
	s.mu.Unlock()
	for _, p := range expired {
		audit.OrDiscard(a.Audit).Record(audit.Event{
			Time: s.cfg.Clock.Now(), Kind: audit.KindTokenRefused, Tenant: s.tenant(),
			Content: s.c.ID.String(), Peer: string(p.id), By: string(s.self), Reason: "expired",
		})
		p.close(fmt.Errorf("%w: %s: token expired at %s without a refresh", ErrRefused, p.id.Short(), p.tokenExpiryAt()))
	}
}

func (p *peer) tokenExpiryAt() string {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.tokenExpiry.UTC().Format(time.RFC3339)
}

// MetaGate decides whether a meta request from a peer is served; an error
// refuses it (the stream is reset, nothing is sent).
type MetaGate func(req wire.MetaRequest, from netx.PeerID) error

// SetMetaAccess sets the token this node sends with its meta requests (nil:
// none) and the gate other peers' meta requests must pass (nil: anyone may
// ask), so a peer that serves only token holders does not hand out its
// manifests and hash layers to anyone else either.
func (n *Node) SetMetaAccess(tok func() string, gate MetaGate) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.metaToken, n.metaGate = tok, gate
}

func (n *Node) metaAccess() (func() string, MetaGate) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.metaToken, n.metaGate
}

// CheckMeta is the MetaGate of a session's content: it checks tok, from
// peer from, as the handshake would. The refusal is audited.
func (s *Session) CheckMeta(tok string, from netx.PeerID) error {
	_, err := s.admit(tok, from)
	return err
}
