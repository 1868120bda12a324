package policy

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"time"
)

// Choker defaults, BitTorrent's classic values.
const (
	DefaultSlots              = 4
	DefaultChokeInterval      = 10 * time.Second
	DefaultOptimisticInterval = 30 * time.Second
)

// ChokerConfig configures a Choker.
type ChokerConfig struct {
	// Slots is the number of regular unchoke slots. Default DefaultSlots.
	Slots int
	// Interval is how often the regular slots are recomputed. Default
	// DefaultChokeInterval.
	Interval time.Duration
	// OptimisticInterval is how often the optimistic unchoke rotates.
	// Default DefaultOptimisticInterval.
	OptimisticInterval time.Duration
	// Rand breaks ties and draws the optimistic unchoke. Nil = fixed seed.
	Rand *rand.Rand
}

// PeerState is one connected peer as the choker sees it.
type PeerState struct {
	Key PeerKey
	// Interested: the peer wants something we have.
	Interested bool
	// DownRate is the measured rate we receive from the peer, bytes/s.
	DownRate float64
	// UpRate is the measured rate we send to the peer, bytes/s.
	UpRate float64
}

// Choker decides which peers we upload to. The caller may call Tick as often
// as it likes; the choker itself decides when a recomputation is due.
//
// Leeching (tit-for-tat): the Slots interested peers that upload to us
// fastest get the regular slots, recomputed every Interval; one more
// interested peer gets an optimistic unchoke that rotates every
// OptimisticInterval, so newcomers and peers with no history can prove
// themselves. A peer first seen within the last OptimisticInterval is three
// times as likely to be drawn, as in BitTorrent, because it has nothing to
// offer yet and needs a first chunk most.
//
// Seeding: round robin over Slots+1 slots (the optimistic slot has no job
// when nobody's download rate matters, so it joins the rotation): every
// Interval the interested peers unchoked least recently get the slots. We
// chose round robin over libtorrent's "fastest upload" because a CDN swarm
// wants the seed's chunks spread over as many receivers as possible, who then
// re-serve them; fastest-upload keeps feeding the same well-connected peers
// and can starve slow ones indefinitely, while round robin bounds everyone's
// wait by (interested/slots)·Interval.
//
// Between recomputations a slot vacated by a peer that left or lost
// interest is refilled at once from the same ranking, so upload capacity is
// not idle for up to an Interval; occupied slots are never changed early.
type Choker struct {
	cfg ChokerConfig
	rnd *rand.Rand

	started        bool
	seeding        bool
	regular        []PeerKey
	optimistic     PeerKey
	hasOptimistic  bool
	nextRegular    time.Time
	nextOptimistic time.Time

	firstSeen    map[PeerKey]time.Time
	lastUnchoked map[PeerKey]time.Time
}

// NewChoker returns a choker; zero fields of cfg take their defaults.
func NewChoker(cfg ChokerConfig) *Choker {
	if cfg.Slots <= 0 {
		cfg.Slots = DefaultSlots
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultChokeInterval
	}
	if cfg.OptimisticInterval <= 0 {
		cfg.OptimisticInterval = DefaultOptimisticInterval
	}
	c := &Choker{
		cfg:          cfg,
		rnd:          cfg.Rand,
		firstSeen:    make(map[PeerKey]time.Time),
		lastUnchoked: make(map[PeerKey]time.Time),
	}
	if c.rnd == nil {
		c.rnd = rand.New(rand.NewPCG(2, 2))
	}
	return c
}

// Regular returns the peers holding regular slots.
func (c *Choker) Regular() []PeerKey { return slices.Clone(c.regular) }

// Optimistic returns the optimistically unchoked peer, if any.
func (c *Choker) Optimistic() (PeerKey, bool) { return c.optimistic, c.hasOptimistic }

// Tick brings the decision up to date at now, given every connected peer and
// whether we are seeding (have the whole content), and returns the peers to
// keep unchoked: the regular slots, then the optimistic one. Everyone else
// is choked. Switching between leeching and seeding recomputes at once.
func (c *Choker) Tick(now time.Time, seeding bool, peers []PeerState) []PeerKey {
	byKey := make(map[PeerKey]*PeerState, len(peers))
	for k := range peers {
		ps := &peers[k]
		byKey[ps.Key] = ps
		if _, ok := c.firstSeen[ps.Key]; !ok {
			c.firstSeen[ps.Key] = now
		}
	}
	// Forget departed peers so the maps stay bounded by connections.
	for k := range c.firstSeen {
		if byKey[k] == nil {
			delete(c.firstSeen, k)
			delete(c.lastUnchoked, k)
		}
	}
	eligible := func(k PeerKey) bool { ps := byKey[k]; return ps != nil && ps.Interested }

	if !c.started || seeding != c.seeding {
		c.started, c.seeding = true, seeding
		c.nextRegular, c.nextOptimistic = now, now
	}
	c.regular = slices.DeleteFunc(c.regular, func(k PeerKey) bool { return !eligible(k) })
	if c.hasOptimistic && (c.seeding || !eligible(c.optimistic)) {
		c.hasOptimistic = false
		c.nextOptimistic = now
	}

	slots := c.cfg.Slots
	if c.seeding {
		slots++
	}
	recompute := !now.Before(c.nextRegular)
	if recompute {
		c.regular = c.regular[:0]
		c.nextRegular = now.Add(c.cfg.Interval)
	}
	if len(c.regular) < slots {
		for _, ps := range c.ranked(peers) {
			if len(c.regular) == slots {
				break
			}
			// Only a full recomputation may promote the optimistic peer;
			// refilling a hole with it would just waste the slot.
			if slices.Contains(c.regular, ps.Key) || (!recompute && c.hasOptimistic && ps.Key == c.optimistic) {
				continue
			}
			c.regular = append(c.regular, ps.Key)
		}
	}

	if !c.seeding {
		promoted := c.hasOptimistic && slices.Contains(c.regular, c.optimistic)
		if promoted || !now.Before(c.nextOptimistic) {
			c.drawOptimistic(now, peers)
		}
	}

	out := slices.Clone(c.regular)
	if c.hasOptimistic {
		out = append(out, c.optimistic)
	}
	for _, k := range out {
		c.lastUnchoked[k] = now
	}
	return out
}

// ranked orders the interested peers for the regular slots: by download
// rate when leeching, least recently unchoked first when seeding; random
// among equals.
func (c *Choker) ranked(peers []PeerState) []*PeerState {
	var r []*PeerState
	for k := range peers {
		if peers[k].Interested {
			r = append(r, &peers[k])
		}
	}
	c.rnd.Shuffle(len(r), func(i, j int) { r[i], r[j] = r[j], r[i] })
	if c.seeding {
		slices.SortStableFunc(r, func(a, b *PeerState) int {
			return c.lastUnchoked[a.Key].Compare(c.lastUnchoked[b.Key])
		})
	} else {
		slices.SortStableFunc(r, func(a, b *PeerState) int { return cmp.Compare(b.DownRate, a.DownRate) })
	}
	return r
}

// drawOptimistic picks a new optimistic unchoke among the interested peers
// without a regular slot, preferring a different peer than the current one.
func (c *Choker) drawOptimistic(now time.Time, peers []PeerState) {
	c.nextOptimistic = now.Add(c.cfg.OptimisticInterval)
	var cands []PeerKey
	var weights []int
	total := 0
	for _, ps := range peers {
		if !ps.Interested || slices.Contains(c.regular, ps.Key) {
			continue
		}
		if c.hasOptimistic && ps.Key == c.optimistic {
			continue
		}
		w := 1
		if now.Sub(c.firstSeen[ps.Key]) < c.cfg.OptimisticInterval {
			w = 3
		}
		cands = append(cands, ps.Key)
		weights = append(weights, w)
		total += w
	}
	if total == 0 {
		// Nobody else to rotate to: keep the current one if still eligible.
		if c.hasOptimistic && slices.Contains(c.regular, c.optimistic) {
			c.hasOptimistic = false
		}
		return
	}
	x := c.rnd.IntN(total)
	for k, w := range weights {
		if x < w {
			c.optimistic, c.hasOptimistic = cands[k], true
			return
		}
		x -= w
	}
}
