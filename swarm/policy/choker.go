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
	// Score is the peer's reputation (Reputation.Score): it breaks ties
	// between equally ranked peers, and a peer below DistrustScore is never
	// drawn for the optimistic unchoke.
	Score float64
	// Sprint marks the origin-assist sprint's leader (PlanSprint): while
	// interested it holds a regular slot whatever its rate, so that the
	// swarm's uploads help one receiver finish early.
	Sprint bool
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
// offer yet and needs a first chunk most. A distrusted peer (Score below
// DistrustScore) is not drawn at all: it has had its chance recently and
// misused it; its score decays back towards zero, and with it its chance.
//
// Reputation never overrides tit-for-tat: between peers ranked equal (the
// same download rate while leeching) the better-scored one comes first, and
// only then chance. While seeding, among peers unchoked equally long ago,
// distrusted ones come last; how much the others gave us does not matter.
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
// An interested origin-assist sprint leader (PeerState.Sprint, see
// PlanSprint) holds a regular slot whatever its rate, from the Tick that
// first sees it interested: the swarm's uploads help one receiver finish
// early, and it seeds at full upload for the rest.
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

	// known is every peer passed to the last Tick. One map lookup per peer
	// per Tick and no per-call allocation: the simulator calls Tick for
	// thousands of peers.
	known map[PeerKey]*history
	gen   uint64 // Tick calls so far
	// The last Tick's peers and their histories, by position: callers
	// usually pass their peers in the same order every time, so most
	// lookups are a string comparison instead of a hash. spare is the
	// other buffer of the pair.
	lastKeys, spareKeys []PeerKey
	lastHist, spareHist []*history
	// Scratch for ranked and drawOptimistic, reused across calls.
	rankBuf  []*PeerState
	candBuf  []PeerKey
	weighBuf []int
}

// history is what the choker remembers about a connected peer.
type history struct {
	firstSeen    time.Time
	lastUnchoked time.Time // zero if never
	gen          uint64    // the last Tick that saw the peer
	idx          int       // its (last) index in that Tick's peers
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
		cfg:   cfg,
		rnd:   cfg.Rand,
		known: make(map[PeerKey]*history),
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

// NextRound is when Tick next recomputes on its own: the earlier of the
// next regular round and, while leeching, the next optimistic rotation; the
// zero time before the first Tick. Until then a Tick changes its answer only
// if a peer it unchoked left or lost interest, a slot is free and an
// interested peer could fill it, or seeding started or stopped, so a caller
// that sees none of these may skip the call (the simulator does, to run
// 10,000 peers).
func (c *Choker) NextRound() time.Time {
	if !c.started {
		return time.Time{}
	}
	t := c.nextRegular
	if !c.seeding && c.nextOptimistic.Before(t) {
		t = c.nextOptimistic
	}
	return t
}

// Tick brings the decision up to date at now, given every connected peer and
// whether we are seeding (have the whole content), and returns the peers to
// keep unchoked: the regular slots, then the optimistic one. Everyone else
// is choked. Switching between leeching and seeding recomputes at once.
func (c *Choker) Tick(now time.Time, seeding bool, peers []PeerState) []PeerKey {
	c.gen++
	distinct := 0
	keys, hist := c.spareKeys[:0], c.spareHist[:0]
	for k := range peers {
		key := peers[k].Key
		var h *history
		if k < len(c.lastKeys) && c.lastKeys[k] == key {
			h = c.lastHist[k] // seen by the last Tick, so still known
		} else if h = c.known[key]; h == nil {
			h = &history{firstSeen: now}
			c.known[key] = h
		}
		keys, hist = append(keys, key), append(hist, h)
		if h.gen != c.gen {
			h.gen = c.gen
			distinct++
		}
		h.idx = k // the last entry for a key wins
	}
	c.spareKeys, c.spareHist = c.lastKeys, c.lastHist
	c.lastKeys, c.lastHist = keys, hist
	// Forget departed peers so the map stays bounded by connections.
	if len(c.known) > distinct {
		for k, h := range c.known {
			if h.gen != c.gen {
				delete(c.known, k)
			}
		}
	}
	eligible := func(k PeerKey) bool {
		h := c.known[k]
		return h != nil && h.gen == c.gen && peers[h.idx].Interested
	}

	if !c.started || seeding != c.seeding {
		c.started, c.seeding = true, seeding
		c.nextRegular, c.nextOptimistic = now, now
	}
	c.regular = slices.DeleteFunc(c.regular, func(k PeerKey) bool { return !eligible(k) })
	if c.hasOptimistic && (c.seeding || !eligible(c.optimistic) || peers[c.known[c.optimistic].idx].Score < DistrustScore) {
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

	c.reserveSprint(peers, slots)

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
		c.known[k].lastUnchoked = now
	}
	return out
}

// reserveSprint gives an interested sprint leader (PeerState.Sprint) a
// regular slot if it has none, at once rather than at the next round: the
// last regular peer makes room. A leader unchoked optimistically moves to
// a regular slot, and Tick draws the optimistic one anew.
func (c *Choker) reserveSprint(peers []PeerState, slots int) {
	for k := range peers {
		ps := &peers[k]
		if !ps.Sprint || !ps.Interested || slices.Contains(c.regular, ps.Key) {
			continue
		}
		if len(c.regular) >= slots {
			c.regular = c.regular[:slots-1]
		}
		c.regular = append([]PeerKey{ps.Key}, c.regular...)
		return
	}
}

// ranked orders the interested peers for the regular slots: by download
// rate then score when leeching, least recently unchoked then trusted
// first when seeding; random among equals.
func (c *Choker) ranked(peers []PeerState) []*PeerState {
	r := c.rankBuf[:0]
	defer func() { c.rankBuf = r[:0] }()
	for k := range peers {
		if peers[k].Interested {
			r = append(r, &peers[k])
		}
	}
	c.rnd.Shuffle(len(r), func(i, j int) { r[i], r[j] = r[j], r[i] })
	if c.seeding {
		slices.SortStableFunc(r, func(a, b *PeerState) int {
			if o := c.known[a.Key].lastUnchoked.Compare(c.known[b.Key].lastUnchoked); o != 0 {
				return o
			}
			// Seeding spreads chunks to whoever needs them, so only
			// distrust counts, not how much a peer gave us.
			return cmp.Compare(distrusted(a.Score), distrusted(b.Score))
		})
	} else {
		slices.SortStableFunc(r, func(a, b *PeerState) int {
			if o := cmp.Compare(b.DownRate, a.DownRate); o != 0 {
				return o
			}
			return cmp.Compare(b.Score, a.Score)
		})
	}
	return r
}

// distrusted is 1 for a score below DistrustScore, else 0.
func distrusted(score float64) int {
	if score < DistrustScore {
		return 1
	}
	return 0
}

// drawOptimistic picks a new optimistic unchoke among the interested peers
// without a regular slot, preferring a different peer than the current one.
func (c *Choker) drawOptimistic(now time.Time, peers []PeerState) {
	c.nextOptimistic = now.Add(c.cfg.OptimisticInterval)
	cands, weights := c.candBuf[:0], c.weighBuf[:0]
	defer func() { c.candBuf, c.weighBuf = cands[:0], weights[:0] }()
	total := 0
	for _, ps := range peers {
		if !ps.Interested || slices.Contains(c.regular, ps.Key) {
			continue
		}
		if c.hasOptimistic && ps.Key == c.optimistic {
			continue
		}
		if ps.Score < DistrustScore {
			continue // misbehaved recently: no free slot
		}
		w := 1
		if now.Sub(c.known[ps.Key].firstSeen) < c.cfg.OptimisticInterval {
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
