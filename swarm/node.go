package swarm

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/token"
	"github.com/shoal-cdn/shoal/wire"
)

// handshakeTimeout bounds how long a new stream may take to say which
// content it wants.
const handshakeTimeout = 10 * time.Second

// Node routes a host's wire streams to the sessions it runs, one per content.
type Node struct {
	host netx.Host
	log  *slog.Logger

	mu        sync.Mutex
	sessions  map[core.ContentID]*Session // guarded by mu
	metaToken func() string               // guarded by mu: token sent with meta requests (SetMetaAccess)
	metaGate  MetaGate                    // guarded by mu: check before a meta request is served
	trust     *Trust                      // guarded by mu: nil until UseTrust
}

// UseTrust makes the node refuse streams from peers t has banned before
// reading a byte of them (each session checks its own Trust too, after the
// handshake names the content). Pass the Trust its sessions share.
func (n *Node) UseTrust(t *Trust) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.trust = t
}

// NewNode starts accepting wire-protocol streams on h.
func NewNode(h netx.Host, log *slog.Logger) *Node {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{host: h, log: log, sessions: map[core.ContentID]*Session{}}
	h.SetStreamHandler(wire.ProtocolID, n.accept)
	return n
}

// ID is the node's peer ID.
func (n *Node) ID() netx.PeerID { return n.host.ID() }

// Host is the node's network endpoint.
func (n *Node) Host() netx.Host { return n.host }

// Add makes s reachable by peers asking for its content.
func (n *Node) Add(s *Session) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sessions[s.c.ID] = s
}

// Remove stops routing streams to the session of id.
func (n *Node) Remove(id core.ContentID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.sessions, id)
}

// Session returns the session of id, if any.
func (n *Node) Session(id core.ContentID) *Session {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sessions[id]
}

// Sessions lists the running sessions.
func (n *Node) Sessions() []*Session {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Session, 0, len(n.sessions))
	for _, s := range n.sessions {
		out = append(out, s)
	}
	return out
}

// accept handles an inbound stream: read the handshake, find the session,
// answer with ours.
func (n *Node) accept(st netx.Stream) {
	n.mu.Lock()
	t := n.trust
	n.mu.Unlock()
	if t != nil && t.Banned(st.RemotePeer()) {
		n.log.Debug("inbound stream from a banned peer refused", "peer", st.RemotePeer().Short())
		st.Reset()
		return
	}
	r := wire.NewReader(st, wire.MaxFrame)
	hs, err := readHandshake(st, r)
	if err != nil {
		n.log.Debug("inbound handshake", "peer", st.RemotePeer().Short(), "err", err)
		st.Reset()
		return
	}
	s := n.Session(hs.Content)
	if s == nil {
		n.log.Debug("inbound stream for unknown content", "peer", st.RemotePeer().Short(), "content", hs.Content.Short())
		st.Reset()
		return
	}
	tok, err := readToken(st, r, hs)
	if err != nil {
		s.log.Debug("inbound token", "peer", st.RemotePeer().Short(), "err", err)
		st.Reset()
		return
	}
	claims, err := s.admit(tok, st.RemotePeer())
	if err != nil {
		st.Reset()
		return
	}
	if err := s.handshakeAndAttach(st, hs, st.RemotePeer(), r, claims); err != nil {
		s.log.Debug("inbound peer refused", "peer", st.RemotePeer().Short(), "err", err)
	}
}

// Connect opens a connection to a peer in s's swarm (no-op if connected,
// banned or ourselves).
func (n *Node) Connect(ctx context.Context, s *Session, id netx.PeerID, addrs []string) error {
	if id == n.host.ID() || !s.wants(id) {
		return nil
	}
	st, err := n.host.NewStream(ctx, id, addrs, wire.ProtocolID)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", id.Short(), err)
	}
	bits, all := s.snapshot()
	withhold := s.authEnabled() // our bitfield waits for the remote's token
	sent, err := s.writeHandshake(st, bits, all, withhold)
	if err != nil {
		st.Reset()
		return fmt.Errorf("handshake with %s: %w", id.Short(), err)
	}
	r := wire.NewReader(st, wire.MaxFrame)
	hs, err := readHandshake(st, r)
	if err != nil {
		st.Reset()
		return fmt.Errorf("handshake with %s: %w", id.Short(), err)
	}
	if hs.Content != s.c.ID {
		st.Reset()
		return fmt.Errorf("%w: %s answered for content %s", ErrProtocol, id.Short(), hs.Content.Short())
	}
	tok, err := readToken(st, r, hs)
	if err != nil {
		st.Reset()
		return fmt.Errorf("handshake with %s: %w", id.Short(), err)
	}
	claims, err := s.admit(tok, id)
	if err != nil {
		st.Reset()
		return err
	}
	if withhold {
		bits, _ = s.snapshot()
		if err := wire.WriteMessage(st, &wire.BitfieldUpdate{Bits: bits}); err != nil {
			st.Reset()
			return fmt.Errorf("handshake with %s: %w", id.Short(), err)
		}
	}
	if err := s.attach(st, hs, n.host.ID(), r, bits); err != nil {
		return err
	}
	s.attached(st, claims, sent)
	return nil
}

// readFrame reads one frame of the handshake phase, giving up after
// handshakeTimeout.
func readFrame(st netx.Stream, r *wire.Reader) (wire.Message, error) {
	t := time.AfterFunc(handshakeTimeout, func() { st.Reset() })
	defer t.Stop()
	return r.Next()
}

// readHandshake reads the first frame, giving up after handshakeTimeout.
func readHandshake(st netx.Stream, r *wire.Reader) (*wire.Handshake, error) {
	m, err := readFrame(st, r)
	if err != nil {
		return nil, err
	}
	hs, ok := m.(*wire.Handshake)
	if !ok {
		return nil, fmt.Errorf("%w: first message is %v, not a handshake", ErrProtocol, m.Type())
	}
	return hs, nil
}

// wants reports whether a connection to id would be accepted.
func (s *Session) wants(id netx.PeerID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, connected := s.peers[id]
	return !s.trust.Banned(id) && !connected && len(s.peers) < s.cfg.MaxPeers && s.ctx != nil && s.ctx.Err() == nil
}

// snapshot returns our current bitfield and whether we fetch every chunk.
func (s *Session) snapshot() (*wire.Bitfield, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advertisedLocked(), s.fetchAllLocked()
}

func (s *Session) handshake(bits *wire.Bitfield, fetchAll bool) *wire.Handshake {
	hs := &wire.Handshake{Content: s.c.ID, Client: "shoal/1", Bits: bits}
	if bits.Complete() {
		hs.Flags |= wire.FlagSeeder
	}
	if fetchAll {
		hs.Flags |= wire.FlagFetchAll
	}
	if !s.cfg.SingleHaves {
		hs.Flags |= wire.FlagHaveBatch
	}
	return hs
}

// handshakeAndAttach answers an inbound handshake (whose token, if the
// session requires one, admit has checked into claims) and attaches the peer.
func (s *Session) handshakeAndAttach(st netx.Stream, hs *wire.Handshake, dialer netx.PeerID, r *wire.Reader, claims *token.Claims) error {
	if !s.wants(st.RemotePeer()) {
		// Still let a duplicate through attach's resolution when it is
		// the preferred direction; refuse banned and over-cap peers here.
		banned := s.trust.Banned(st.RemotePeer())
		s.mu.Lock()
		full := len(s.peers) >= s.cfg.MaxPeers
		s.mu.Unlock()
		if banned || full || s.context().Err() != nil {
			st.Reset()
			return fmt.Errorf("refused (banned %v, full %v)", banned, full)
		}
	}
	bits, all := s.snapshot()
	sent, err := s.writeHandshake(st, bits, all, false)
	if err != nil {
		st.Reset()
		return err
	}
	if err := awaitBitfield(st, r, hs); err != nil {
		st.Reset()
		return err
	}
	if err := s.attach(st, hs, dialer, r, bits); err != nil {
		return err
	}
	s.attached(st, claims, sent)
	return nil
}

// attach registers a handshaken stream as a peer and starts its loops. sent
// is the bitfield our handshake carried: chunks gained since are sent as HAVE.
func (s *Session) attach(st netx.Stream, hs *wire.Handshake, dialer netx.PeerID, r *wire.Reader, sent *wire.Bitfield) error {
	id := st.RemotePeer()
	if hs.Bits.Len() != s.c.Len() {
		st.Reset()
		return fmt.Errorf("%w: %s sent a bitfield of %d bits for %d chunks", ErrProtocol, id.Short(), hs.Bits.Len(), s.c.Len())
	}
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.trust.Banned(id) || s.ctx == nil || s.ctx.Err() != nil {
		st.Reset()
		return ErrBanned
	}
	if old := s.peers[id]; old != nil {
		// Both sides dialled: keep the stream opened by the lower peer ID,
		// which both ends agree on.
		preferred := min(s.self, id)
		if dialer != preferred || old.dialer == preferred {
			st.Reset()
			return nil
		}
		delete(s.peers, id)
		s.picker.Availability().RemoveBitfield(old.bits)
		s.picker.PeerGone(old.key)
		go old.close(nil)
	}
	p := newPeer(s, st, dialer, hs.Bits, now)
	p.fetchAll = hs.Flags&wire.FlagFetchAll != 0
	p.batch = hs.Flags&wire.FlagHaveBatch != 0 && !s.cfg.SingleHaves
	s.peers[id] = p
	s.picker.Availability().AddBitfield(p.bits)
	p.useful = s.usefulLocked(p.bits)
	adv := s.advertisedLocked() // the mode may have changed since the handshake
	for i := range s.c.Len() {
		switch {
		case adv.Has(i) && !sent.Has(i):
			p.send(&wire.Have{Index: uint32(i)})
		case !adv.Has(i) && sent.Has(i):
			p.send(&wire.DontHave{Index: uint32(i)}) // lost, or no longer offered, since the handshake
		}
	}
	s.updateInterestLocked(p)
	// DATA payloads come from the session's pool and go back to it once
	// stored (see peer.data).
	r.Alloc = s.bufs.get
	s.wg.Add(2)
	go p.writeLoop()
	go func() {
		// The handshake reader may hold buffered bytes: keep using it.
		p.readLoopWith(r)
	}()
	s.rechokeLocked(now)
	return nil
}

// Peers lists the connected peers' IDs.
func (s *Session) Peers() []netx.PeerID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netx.PeerID, 0, len(s.peers))
	for id := range s.peers {
		out = append(out, id)
	}
	return out
}
