package discovery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/netx"
)

// Defaults of PEXConfig.
const (
	DefaultPEXInterval = 30 * time.Second
	DefaultPEXDials    = 4
	// pexStreamTimeout bounds sending or reading one message.
	pexStreamTimeout = 10 * time.Second
	// pexTriedMax bounds the peers remembered as recently dialled, per
	// swarm; pexRetryAfter (in intervals) is how long one is not dialled
	// again whoever names it.
	pexTriedMax   = 1024
	pexRetryAfter = 4
	pexSendersMax = 4 // sends in flight at once, per swarm
)

// PEXConfig configures peer exchange on a host.
type PEXConfig struct {
	Host netx.Host
	// Interval is the least time between two messages to, or from, one
	// neighbour (default DefaultPEXInterval). A message from a neighbour
	// that comes sooner is dropped unread.
	Interval time.Duration
	// MaxPeers caps the peers named in one message (default and ceiling
	// MaxPEXPeers).
	MaxPeers int
	// Dials caps the dials verifying received peers in flight at once, per
	// swarm (default DefaultPEXDials); entries beyond it are dropped.
	Dials  int
	Logger *slog.Logger
}

// PEXSwarm is what peer exchange needs of one swarm.
type PEXSwarm interface {
	// Neighbours are the peers connected in the swarm, past its handshake
	// (and its token check).
	Neighbours() []netx.PeerID
	// Connect dials a peer and runs the swarm's handshake; nil means it is
	// a neighbour now.
	Connect(ctx context.Context, p PeerInfo) error
}

// PEX runs peer exchange for the swarms of one host: every Interval it tells
// each neighbour of a swarm about the other neighbours of that swarm (never
// of a peer it has not itself connected to, and only inside one swarm), and
// it dials the peers its neighbours name before they count as neighbours, so
// a fabricated entry (an address that does not answer, a peer ID that does
// not match, a peer the handshake refuses) is never used or passed on.
type PEX struct {
	cfg PEXConfig
	log *slog.Logger

	mu     sync.Mutex
	swarms map[core.ContentID]*pexSwarm // guarded by mu
}

// pexSent is the peer set last sent to a neighbour, and when.
type pexSent struct {
	key string
	at  time.Time
}

// pexSwarm is one swarm's exchange state.
type pexSwarm struct {
	sw      PEXSwarm
	ctx     context.Context
	learned func(PeerInfo, error)
	dials   chan struct{} // a token per verifying dial in flight
	wg      sync.WaitGroup

	mu       sync.Mutex
	lastFrom map[netx.PeerID]time.Time // guarded by mu: last message accepted from each neighbour
	lastSent map[netx.PeerID]pexSent   // guarded by mu: what each neighbour was last sent
	tried    map[string]time.Time      // guarded by mu: peers dialled on a neighbour's word, and when
	closed   bool                      // guarded by mu: Run is done; no new dials (wg.Add) from here
}

// NewPEX starts answering PEX streams on cfg.Host. Swarms take part with Run.
func NewPEX(cfg PEXConfig) *PEX {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultPEXInterval
	}
	if cfg.MaxPeers <= 0 || cfg.MaxPeers > MaxPEXPeers {
		cfg.MaxPeers = MaxPEXPeers
	}
	if cfg.Dials <= 0 {
		cfg.Dials = DefaultPEXDials
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	x := &PEX{cfg: cfg, log: cfg.Logger, swarms: map[core.ContentID]*pexSwarm{}}
	cfg.Host.SetStreamHandler(PEXProtocol, x.accept)
	return x
}

// Close stops answering PEX streams.
func (x *PEX) Close() { x.cfg.Host.SetStreamHandler(PEXProtocol, nil) }

// Run exchanges peers in the swarm of id until ctx ends, and waits for its
// dials. learned, if not nil, hears of each peer a neighbour named that was
// dialled: err nil when it joined the swarm.
func (x *PEX) Run(ctx context.Context, id core.ContentID, sw PEXSwarm, learned func(PeerInfo, error)) {
	s := &pexSwarm{sw: sw, ctx: ctx, learned: learned, dials: make(chan struct{}, x.cfg.Dials),
		lastFrom: map[netx.PeerID]time.Time{}, lastSent: map[netx.PeerID]pexSent{}, tried: map[string]time.Time{}}
	x.mu.Lock()
	if x.swarms[id] != nil {
		x.mu.Unlock()
		return // one exchange per swarm
	}
	x.swarms[id] = s
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		delete(x.swarms, id)
		x.mu.Unlock()
		s.mu.Lock()
		s.closed = true // a stream handler that found s before the delete adds no dial now
		s.mu.Unlock()
		s.wg.Wait()
	}()
	wait := x.cfg.Interval / 4 // the first round soon after joining
	for {
		t := time.NewTimer(jitter(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = x.cfg.Interval
		x.round(ctx, id, s)
	}
}

// round sends each neighbour the other neighbours, unless that set has not
// changed since the last message to it, sent less than pexRetryAfter
// intervals ago (a receiver that had not yet attached the sender drops it).
func (x *PEX) round(ctx context.Context, id core.ContentID, s *pexSwarm) {
	nbrs := s.sw.Neighbours()
	known := make([]PeerInfo, 0, len(nbrs))
	for _, n := range nbrs {
		addrs := netx.PeerAddrs(x.cfg.Host, n)
		if len(addrs) == 0 {
			continue // nothing another peer could dial
		}
		addrs = slices.DeleteFunc(addrs, func(a string) bool { return len(a) > MaxAddrLen })
		known = append(known, PeerInfo{Peer: string(n), Addrs: addrs[:min(len(addrs), MaxPEXAddrs)]})
	}
	s.prune(nbrs, time.Now(), x.cfg.Interval)
	sem := make(chan struct{}, pexSendersMax)
	var wg sync.WaitGroup
	for _, n := range nbrs {
		peers := make([]PeerInfo, 0, len(known))
		for _, k := range known {
			if k.Peer != string(n) && len(k.Peer) <= MaxPeerIDLen {
				peers = append(peers, k)
			}
		}
		rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
		peers = peers[:min(len(peers), x.cfg.MaxPeers)]
		if len(peers) == 0 || !s.changed(n, peers, time.Now(), x.cfg.Interval) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := x.send(ctx, n, &PEXMessage{Content: id, Peers: peers}); err != nil {
				s.forgetSent(n) // try again next round
				x.log.Debug("PEX send", "peer", n.Short(), "err", err)
			}
		}()
	}
	wg.Wait()
}

func (x *PEX) send(ctx context.Context, to netx.PeerID, m *PEXMessage) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, pexStreamTimeout)
	defer cancel()
	st, err := x.cfg.Host.NewStream(ctx, to, nil, PEXProtocol)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if _, err := st.Write(b); err != nil {
		st.Reset()
		return err
	}
	return st.Close()
}

// accept reads one message from a neighbour and dials the peers it names.
func (x *PEX) accept(st netx.Stream) {
	from := st.RemotePeer()
	t := time.AfterFunc(pexStreamTimeout, func() { st.Reset() })
	b, err := io.ReadAll(io.LimitReader(st, MaxPEXBytes+1))
	t.Stop()
	if err != nil {
		st.Reset()
		return
	}
	// Closed once the message is dealt with, so a sender that waits for
	// the end of the stream knows it was.
	defer st.Close()
	var m PEXMessage
	if err := m.UnmarshalBinary(b); err != nil {
		x.log.Debug("PEX message refused", "peer", from.Short(), "err", err)
		return
	}
	x.mu.Lock()
	s := x.swarms[m.Content]
	x.mu.Unlock()
	if s == nil {
		return
	}
	nbrs := s.sw.Neighbours()
	if !slices.Contains(nbrs, from) {
		// Only peers admitted to the swarm (its handshake and token
		// check) may tell us of its members.
		x.log.Debug("PEX message from a peer outside the swarm", "peer", from.Short(), "content", m.Content.Short())
		return
	}
	now := time.Now()
	if !s.admit(from, now, x.cfg.Interval) {
		x.log.Debug("PEX message too soon", "peer", from.Short())
		return
	}
	self := string(x.cfg.Host.ID())
	own := x.cfg.Host.Addrs()
	for _, p := range m.Peers {
		// Only addresses this peer could dial: a neighbour must not make
		// it dial hosts of the neighbour's choosing (a LAN host, a port on
		// this machine).
		if p.Addrs = netx.Reachable(own, p.Addrs); len(p.Addrs) == 0 {
			continue
		}
		if p.Peer == self || slices.Contains(nbrs, netx.PeerID(p.Peer)) || !s.try(p.Peer, now, x.cfg.Interval) {
			continue
		}
		select {
		case s.dials <- struct{}{}:
		default:
			continue // enough dials in flight: the rest wait for another round
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			<-s.dials
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() { <-s.dials }()
			ctx, cancel := context.WithTimeout(s.ctx, pexStreamTimeout)
			err := s.sw.Connect(ctx, p)
			cancel()
			if err == nil && !slices.Contains(s.sw.Neighbours(), netx.PeerID(p.Peer)) {
				err = fmt.Errorf("%s did not join the swarm", netx.PeerID(p.Peer).Short())
			}
			if s.learned != nil {
				s.learned(p, err)
			}
		}()
	}
}

// admit reports whether a message from n may be read now: at most one per
// interval (with a tenth of slack for timers).
func (s *pexSwarm) admit(n netx.PeerID, now time.Time, interval time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.lastFrom[n]; ok && now.Sub(last) < interval*9/10 {
		return false
	}
	s.lastFrom[n] = now
	return true
}

// try reports whether peer p may be dialled on a neighbour's word now, and
// remembers that it was.
func (s *pexSwarm) try(p string, now time.Time, interval time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tried[p]; ok && now.Sub(t) < pexRetryAfter*interval {
		return false
	}
	if len(s.tried) >= pexTriedMax {
		return false
	}
	s.tried[p] = now
	return true
}

// changed reports whether peers differ from what n was last sent, or were
// sent pexRetryAfter intervals ago, and records them as sent now.
func (s *pexSwarm) changed(n netx.PeerID, peers []PeerInfo, now time.Time, interval time.Duration) bool {
	ids := make([]string, len(peers))
	for i, p := range peers {
		ids[i] = p.Peer
	}
	slices.Sort(ids)
	key := strings.Join(ids, "\n")
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.lastSent[n]; ok && last.key == key && now.Sub(last.at) < pexRetryAfter*interval {
		return false
	}
	s.lastSent[n] = pexSent{key, now}
	return true
}

func (s *pexSwarm) forgetSent(n netx.PeerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.lastSent, n)
}

// prune forgets neighbours that left and dials old enough to retry.
func (s *pexSwarm) prune(nbrs []netx.PeerID, now time.Time, interval time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n := range s.lastFrom {
		if !slices.Contains(nbrs, n) {
			delete(s.lastFrom, n)
		}
	}
	for n := range s.lastSent {
		if !slices.Contains(nbrs, n) {
			delete(s.lastSent, n)
		}
	}
	for p, t := range s.tried {
		if now.Sub(t) >= pexRetryAfter*interval {
			delete(s.tried, p)
		}
	}
}

// jitter spreads d over ±10 %.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()-0.5)*0.2*float64(d))
}
