package swarm

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/wire"
)

// Remote availability: what peers the session is not connected to say they
// hold, learnt from their gossip summaries. It never feeds the picker (a
// chunk is only asked of a connected peer, whose bitfield and HAVEs are the
// truth); it tells the session whom to dial when a chunk it wants has no
// connected holder, and how far knowledge of a chunk has spread.

// Remote availability defaults.
const (
	// DefaultRemotePeers bounds the summaries a session keeps: beyond it,
	// the one heard from longest ago goes.
	DefaultRemotePeers = 256
	// DefaultRemoteTTL is how long a summary counts after it arrives, in a
	// swarm small enough for the default interval: three anti-entropy
	// rounds, so one lost round does not forget a holder. It stretches
	// with the interval (GossipInterval).
	DefaultRemoteTTL = 3 * DefaultGossipInterval
	// DefaultGossipInterval is how often a peer republishes its summary
	// when nothing worth telling happened (anti-entropy), in a swarm of up
	// to GossipRate × DefaultGossipInterval peers (see GossipInterval).
	DefaultGossipInterval = 30 * time.Second
	// GossipRate is the anti-entropy summaries per second a whole swarm
	// sends: each peer's interval stretches with the swarm's size so that
	// the gossip a peer carries stays about the same however many join.
	GossipRate = 1
	// remoteRedial is how long a remote holder is left alone after a dial.
	remoteRedial = 10 * time.Second
)

// Errors of OfferSummary.
var (
	// ErrOtherContent: the summary is for another content or chunk count.
	ErrOtherContent = errors.New("summary for another content")
	// ErrStaleSummary: the sender already told us something newer.
	ErrStaleSummary = errors.New("stale summary")
)

// remotePeer is one sender's latest summary.
type remotePeer struct {
	bits    *wire.Bitfield
	addrs   []string
	slots   int
	seq     uint64
	seen    time.Time // when the summary arrived
	dialled time.Time // last time RemoteDials offered it (zero: never)
}

// RemotePeer is a peer to dial: it holds chunks we want that no connected
// peer has.
type RemotePeer struct {
	ID    netx.PeerID
	Addrs []string
	// Rare is how many of those chunks it holds.
	Rare int
}

// Summary describes what the session holds for its gossip topic: seq
// orders it among ours, addrs are where to dial us.
func (s *Session) Summary(seq uint64, addrs []string) *wire.Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	bits := s.advertisedLocked()
	sum := &wire.Summary{
		Content: s.c.ID, Seq: seq, Chunks: s.c.Len(),
		Slots:  min(255, max(0, s.cfg.MaxPeers-len(s.peers))),
		Ranges: wire.RunsOf(bits, wire.MaxSummaryRanges),
	}
	if bits.Complete() {
		sum.Flags |= wire.SummarySeeder
	}
	for _, a := range addrs {
		if len(sum.Addrs) < wire.MaxSummaryAddrs && len(a) > 0 && len(a) <= wire.MaxSummaryAddr {
			sum.Addrs = append(sum.Addrs, a)
		}
	}
	return sum
}

// CheckSummary says whether sum could be offered: it is for this content,
// with its chunk count. Gossip validators call it before passing a summary
// on.
func (s *Session) CheckSummary(sum *wire.Summary) error {
	if sum.Content != s.c.ID || sum.Chunks != s.c.Len() {
		return fmt.Errorf("%w: %s of %d chunks, want %s of %d", ErrOtherContent, sum.Content.Short(), sum.Chunks, s.c.ID.Short(), s.c.Len())
	}
	return nil
}

// OfferSummary records what from (the summary's verified author) holds.
// It fails with ErrOtherContent for a summary of another content and
// ErrStaleSummary for one older than from's last.
func (s *Session) OfferSummary(from netx.PeerID, sum *wire.Summary) error {
	if err := s.CheckSummary(sum); err != nil {
		return err
	}
	if from == s.self {
		return nil
	}
	bits := sum.Bitfield()
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.remotes == nil {
		s.remotes = map[netx.PeerID]*remotePeer{}
	}
	old := s.remotes[from]
	if old != nil && sum.Seq <= old.seq {
		return fmt.Errorf("%w: %d from %s, have %d", ErrStaleSummary, sum.Seq, from.Short(), old.seq)
	}
	r := &remotePeer{bits: bits, addrs: sum.Addrs, slots: sum.Slots, seq: sum.Seq, seen: now}
	if old != nil {
		r.dialled = old.dialled
	}
	s.remotes[from] = r
	if limit := s.remoteLimit(); len(s.remotes) > limit {
		s.pruneRemotesLocked(now, limit)
	}
	return nil
}

func (s *Session) remoteLimit() int {
	if s.cfg.RemotePeers > 0 {
		return s.cfg.RemotePeers
	}
	return DefaultRemotePeers
}

func (s *Session) remoteTTL() time.Duration {
	if s.cfg.RemoteTTL > 0 {
		return s.cfg.RemoteTTL
	}
	return 3 * GossipInterval(DefaultGossipInterval, len(s.remotes)+1)
}

// GossipInterval is the anti-entropy interval of a peer that knows of
// known peers in its swarm (itself included): base, or longer in a swarm
// of more than GossipRate × base peers, so the swarm as a whole sends about
// GossipRate summaries per second.
func GossipInterval(base time.Duration, known int) time.Duration {
	return max(base, time.Duration(known)*time.Second/GossipRate)
}

// KnownPeers is how many peers of the swarm the session knows of: the
// connected ones and those it holds a summary of (bounded by RemotePeers),
// itself included.
func (s *Session) KnownPeers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.remotes) + 1
	for id := range s.peers {
		if _, ok := s.remotes[id]; !ok {
			n++
		}
	}
	return n
}

// pruneRemotesLocked drops expired summaries, then the oldest ones until
// at most limit are left.
func (s *Session) pruneRemotesLocked(now time.Time, limit int) {
	ttl := s.remoteTTL()
	for id, r := range s.remotes {
		if now.Sub(r.seen) > ttl {
			delete(s.remotes, id)
		}
	}
	if len(s.remotes) <= limit {
		return
	}
	ids := make([]netx.PeerID, 0, len(s.remotes))
	for id := range s.remotes {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b netx.PeerID) int { return s.remotes[a].seen.Compare(s.remotes[b].seen) })
	for _, id := range ids[:len(ids)-limit] {
		delete(s.remotes, id)
	}
}

// KnowsHolder reports whether chunk i is held here, by a connected peer, or
// by a peer whose live summary says so.
func (s *Session) KnowsHolder(i int) bool {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.picker.Has(i) || s.picker.Availability().Count(i) > 0 {
		return true
	}
	ttl := s.remoteTTL()
	for _, r := range s.remotes {
		if now.Sub(r.seen) <= ttl && r.bits.Has(i) {
			return true
		}
	}
	return false
}

// RemoteDials returns up to max peers worth dialling: not connected, not
// banned, with free slots, not offered in the last remoteRedial, each
// holding wanted chunks that we lack and no connected peer has; the ones
// holding most such chunks first. The count is also bounded by the free
// connection slots of the session. Each returned peer counts as dialled.
func (s *Session) RemoteDials(max int) []RemotePeer {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	max = min(max, s.cfg.MaxPeers-len(s.peers))
	if max <= 0 || len(s.remotes) == 0 || s.picker.Satisfied() {
		return nil
	}
	var rare []int
	av := s.picker.Availability()
	for i := range s.c.Len() {
		if !s.picker.Has(i) && s.picker.Wanted(i) && av.Count(i) == 0 {
			rare = append(rare, i)
		}
	}
	if len(rare) == 0 {
		return nil
	}
	ttl := s.remoteTTL()
	var out []RemotePeer
	for id, r := range s.remotes {
		if _, connected := s.peers[id]; connected || r.slots == 0 || len(r.addrs) == 0 ||
			now.Sub(r.seen) > ttl || (!r.dialled.IsZero() && now.Sub(r.dialled) < remoteRedial) || s.trust.Banned(id) {
			continue
		}
		n := 0
		for _, i := range rare {
			if r.bits.Has(i) {
				n++
			}
		}
		if n > 0 {
			out = append(out, RemotePeer{ID: id, Addrs: r.addrs, Rare: n})
		}
	}
	slices.SortFunc(out, func(a, b RemotePeer) int {
		return cmp.Or(cmp.Compare(b.Rare, a.Rare), cmp.Compare(a.ID, b.ID))
	})
	out = out[:min(len(out), max)]
	for _, p := range out {
		s.remotes[p.ID].dialled = now
	}
	return out
}
