package policy

import (
	"math/rand/v2"
	"slices"
	"time"
)

// DefaultMargin is how close to its deadline a chunk becomes urgent. The
// picker's other defaults (DefaultGrace, DefaultAssumedRate) are the
// session's control-loop constants, in control.go.
const DefaultMargin = 2 * time.Second

// PickerConfig configures a Picker.
type PickerConfig struct {
	// Chunks is the number of chunks in the content, n.
	Chunks int
	// ChunkSize is the nominal chunk size in bytes; expected arrival times
	// are computed in whole chunks of this size.
	ChunkSize int64
	// Have is the set we already hold (e.g. from the cache); nil = nothing.
	// The picker copies it.
	Have *Bitset
	// Rand breaks ties between equally rare chunks. Nil means a fixed seed,
	// so runs stay reproducible.
	Rand *rand.Rand
	// Start is when the swarm started being tried; Grace counts from it.
	// Zero means the first Requested or OriginFallback call.
	Start time.Time
	// Grace is how long the swarm gets before chunks that no connected peer
	// has go to the origin. Default DefaultGrace.
	Grace time.Duration
	// Margin: a deadline chunk is urgent once its deadline is within Margin
	// of now. Default DefaultMargin.
	Margin time.Duration
	// AssumedRate (bytes/s) stands in for a peer's rate until it has been
	// measured. Default DefaultAssumedRate.
	AssumedRate float64
	// EndGameMaxRequests caps how many sources one chunk is requested from
	// at once in end-game. Default 2.
	EndGameMaxRequests int
	// Order is the background lane's order. Default RarestFirst.
	Order Order
	// Self is this peer's PeerSeed: the origin's starter chunk is the one
	// it ranks best for (see OriginFallback). Zero is a valid seed.
	Self uint64
	// Want is the set of chunks to fetch: readers grow and shrink it with
	// SetWant. Nil means every chunk (a whole-content download, as the
	// simulator and `shoal get` of a whole content do). The picker copies it.
	// Chunks outside it are never picked by the background lane, sent to
	// the origin by OriginFallback's background pass, or duplicated in
	// end-game; a deadline (SetDeadline) makes a chunk wanted on its own.
	Want *Bitset
}

// Order is how the background lane orders the chunks it picks.
type Order int

const (
	// RarestFirst picks the chunks fewest connected peers have first,
	// random among equals: it keeps every chunk replicated, so the swarm
	// survives any peer leaving (BitTorrent's choice, and the default).
	RarestFirst Order = iota
	// Sequential picks the lowest-index missing chunk first. It exists to
	// compare against rarest-first (in the simulator and in swarm tests):
	// it suits a single streaming viewer but leaves a swarm's chunks
	// unevenly replicated.
	Sequential
)

// Picker decides which chunks to request from which source. It owns the
// content's Availability, our have-set, the deadline lane and every request
// in flight. See Next for the request policy and OriginFallback for the
// origin policy.
type Picker struct {
	cfg     PickerConfig
	avail   *Availability
	have    *Bitset
	missing int
	// want is the set readers asked for; wantMissing counts wanted chunks
	// not held, and wantFlying those of them with a request outstanding, so
	// Satisfied and EndGame are O(1).
	want        *Bitset
	wantMissing int
	wantFlying  int
	rnd         *rand.Rand
	start       time.Time
	// primed is set once a chunk was requested from anyone or received:
	// the origin's starter chunk (OriginFallback) is for a session that
	// has done neither.
	primed bool

	flights    map[int]*flight // chunks with at least one request outstanding
	flightList []int           // the keys of flights, in a deterministic order
	peers      map[PeerKey]*peerState

	due   []dueEntry // deadline lane, sorted by (at, chunk)
	dueAt map[int]time.Time
	// peerOnly marks wanted chunks the origin should not be asked for
	// unless they become urgent: a reader's look-ahead, worth taking from
	// a peer early but not worth an origin fetch the reader may never need.
	peerOnly map[int]bool
	// originFailed marks chunks whose last origin request failed: for
	// them the deadline lane takes a peer even if it will be late, since
	// the origin may not come back at all.
	originFailed map[int]bool

	edge    int // chunks >= edge are not published yet (live); Chunks by default
	seqFrom int // Sequential: no missing chunk below this index

	mode Mode // which sources Next and OriginFallback may use (SetMode)
}

type request struct {
	peer PeerKey
	at   time.Time
}

type flight struct {
	reqs []request
	idx  int // position in flightList
}

// peerState is what the picker knows about a source's request queue, to
// estimate when each request will arrive.
type peerState struct {
	rate     float64     // measured bytes/s, 0 = unknown
	chunks   []int       // outstanding requests, oldest first
	at       []time.Time // when chunks[k] was requested
	lastDone time.Time   // last delivery from this peer
}

type dueEntry struct {
	at    time.Time
	chunk int
}

// NewPicker returns a picker for cfg.Chunks chunks.
func NewPicker(cfg PickerConfig) *Picker {
	if cfg.Chunks < 0 {
		cfg.Chunks = 0
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Margin <= 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.AssumedRate <= 0 {
		cfg.AssumedRate = DefaultAssumedRate
	}
	if cfg.EndGameMaxRequests <= 0 {
		cfg.EndGameMaxRequests = 2
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = 256 << 10
	}
	p := &Picker{
		cfg:     cfg,
		avail:   NewAvailability(cfg.Chunks),
		have:    NewBitset(cfg.Chunks),
		missing: cfg.Chunks,
		rnd:     cfg.Rand,
		start:   cfg.Start,
		flights: make(map[int]*flight),
		peers:   make(map[PeerKey]*peerState),
		dueAt:   make(map[int]time.Time),
		edge:    cfg.Chunks,

		originFailed: make(map[int]bool),
		peerOnly:     make(map[int]bool),
		want:         NewBitset(cfg.Chunks),
	}
	if p.rnd == nil {
		p.rnd = rand.New(rand.NewPCG(1, 1))
	}
	if cfg.Want == nil {
		p.want.SetAll()
	} else {
		for i := cfg.Want.NextSet(0); i >= 0 && i < cfg.Chunks; i = cfg.Want.NextSet(i + 1) {
			p.want.Set(i)
		}
	}
	for i := cfg.Have.NextSet(0); i >= 0 && i < cfg.Chunks; i = cfg.Have.NextSet(i + 1) {
		p.have.Set(i)
		p.missing--
	}
	for i := range cfg.Chunks {
		if p.want.Has(i) && !p.have.Has(i) {
			p.wantMissing++
		}
		p.refresh(i)
	}
	return p
}

// SetWant adds chunk i to the wanted set (on) or takes it out. A chunk taken
// out keeps any request already outstanding (it just finishes) and any
// deadline (clear it with ClearDeadline).
func (p *Picker) SetWant(i int, on bool) {
	if !p.valid(i) || p.want.Has(i) == on {
		return
	}
	d := -1
	if on {
		p.want.Set(i)
		d = 1
	} else {
		p.want.Clear(i)
	}
	if !p.have.Has(i) {
		p.wantMissing += d
		if p.flights[i] != nil {
			p.wantFlying += d
		}
	}
	p.refresh(i)
}

// SetPeerOnly marks chunk i as wanted from peers only (on) or from any
// source: OriginFallback leaves a peer-only chunk alone until its deadline
// is urgent, and never sends it to the origin without one.
func (p *Picker) SetPeerOnly(i int, on bool) {
	if !p.valid(i) {
		return
	}
	if on {
		p.peerOnly[i] = true
	} else {
		delete(p.peerOnly, i)
	}
}

// SetMode sets which sources the picker uses from now on: in a mode that
// does not fetch from peers (ModeOff) Next picks nothing and
// OriginFallback treats every wanted chunk as one no peer has, with the
// grace over. The caller releases what is in flight to peers (Failed)
// when it switches to ModeOff, so those chunks become origin candidates.
func (p *Picker) SetMode(m Mode) { p.mode = m }

// Mode is the mode SetMode set (ModeOn by default).
func (p *Picker) Mode() Mode { return p.mode }

// Wanted reports whether chunk i is in the wanted set.
func (p *Picker) Wanted(i int) bool { return p.valid(i) && p.want.Has(i) }

// WantMissing is the number of wanted chunks not held.
func (p *Picker) WantMissing() int { return p.wantMissing }

// Satisfied reports whether every wanted chunk is held: the peer is a seed
// for what its readers asked, though not necessarily for the content.
func (p *Picker) Satisfied() bool { return p.wantMissing == 0 }

// Lost records that chunk i, once held, is held no more (evicted from the
// cache, found corrupt on read, purged): it becomes missing again, and is
// fetched again if wanted.
func (p *Picker) Lost(i int) {
	if !p.valid(i) || !p.have.Has(i) {
		return
	}
	p.have.Clear(i)
	p.missing++
	if p.want.Has(i) {
		p.wantMissing++
	}
	p.seqFrom = min(p.seqFrom, i)
	p.refresh(i)
}

// Availability is the per-chunk peer count the picker ranks by. The session
// feeds it each peer's bitfield on connect (AddBitfield), HAVEs (AddHave)
// and the same bitfield on disconnect (RemoveBitfield, alongside PeerGone).
func (p *Picker) Availability() *Availability { return p.avail }

// Has reports whether we hold chunk i.
func (p *Picker) Has(i int) bool { return p.have.Has(i) }

// Missing is the number of chunks we still lack.
func (p *Picker) Missing() int { return p.missing }

// Done reports whether every chunk has been received.
func (p *Picker) Done() bool { return p.missing == 0 }

// InFlight is the number of distinct chunks with a request outstanding.
func (p *Picker) InFlight() int { return len(p.flightList) }

// Outstanding is the number of requests outstanding to peer.
func (p *Picker) Outstanding(peer PeerKey) int {
	if ps := p.peers[peer]; ps != nil {
		return len(ps.chunks)
	}
	return 0
}

// EndGame reports whether every wanted missing chunk is in flight, the
// point where Next starts duplicating requests.
func (p *Picker) EndGame() bool { return p.wantMissing > 0 && p.wantFlying == p.wantMissing }

// SetRate records peer's measured download rate (bytes/s) for expected
// arrival estimates. Next records the rate it is given too.
func (p *Picker) SetRate(peer PeerKey, bytesPerSec float64) {
	if peer == Origin {
		return
	}
	p.peer(peer).rate = bytesPerSec
}

func (p *Picker) peer(k PeerKey) *peerState {
	ps := p.peers[k]
	if ps == nil {
		ps = &peerState{}
		p.peers[k] = ps
	}
	return ps
}

// SetDeadline puts chunk i in the deadline lane, due at t (moving it if it
// was already there). Deadline chunks leave the rarest-first order: they are
// picked by deadline, never by rarity. Ignored for chunks we have.
func (p *Picker) SetDeadline(i int, t time.Time) {
	if !p.valid(i) || p.have.Has(i) {
		return
	}
	p.removeDue(i)
	p.dueAt[i] = t
	e := dueEntry{at: t, chunk: i}
	k, _ := slices.BinarySearchFunc(p.due, e, cmpDue)
	p.due = slices.Insert(p.due, k, e)
	p.refresh(i)
}

// ClearDeadline returns chunk i to the background lane.
func (p *Picker) ClearDeadline(i int) {
	if !p.valid(i) {
		return
	}
	p.removeDue(i)
	p.refresh(i)
}

// Deadline returns chunk i's due time, if it has one.
func (p *Picker) Deadline(i int) (time.Time, bool) {
	t, ok := p.dueAt[i]
	return t, ok
}

func cmpDue(a, b dueEntry) int {
	if c := a.at.Compare(b.at); c != 0 {
		return c
	}
	return a.chunk - b.chunk
}

func (p *Picker) removeDue(i int) {
	t, ok := p.dueAt[i]
	if !ok {
		return
	}
	delete(p.dueAt, i)
	if k, found := slices.BinarySearchFunc(p.due, dueEntry{at: t, chunk: i}, cmpDue); found {
		p.due = slices.Delete(p.due, k, k+1)
	}
}

// Requested records that chunk i was requested from peer (Origin for the
// origin) at t. Next does not do this itself: the session calls Requested
// for each chunk it actually sent a REQUEST for.
func (p *Picker) Requested(i int, peer PeerKey, t time.Time) {
	if !p.valid(i) || p.have.Has(i) {
		return
	}
	if p.start.IsZero() {
		p.start = t
	}
	f := p.flights[i]
	if f == nil {
		f = &flight{idx: len(p.flightList)}
		p.flights[i] = f
		p.flightList = append(p.flightList, i)
		if p.want.Has(i) {
			p.wantFlying++
		}
	} else if f.requestedFrom(peer) {
		return
	}
	f.reqs = append(f.reqs, request{peer: peer, at: t})
	p.primed = true
	if peer != Origin {
		ps := p.peer(peer)
		ps.chunks = append(ps.chunks, i)
		ps.at = append(ps.at, t)
	}
	p.refresh(i)
}

// Received records that chunk i arrived intact from `from` at t. It returns
// the other sources that still have a request for i outstanding (end-game or
// deadline duplicates, possibly Origin): the session should CANCEL them.
func (p *Picker) Received(i int, from PeerKey, t time.Time) (cancel []PeerKey) {
	if !p.valid(i) || p.have.Has(i) {
		return nil
	}
	if p.want.Has(i) {
		p.wantMissing--
		if p.flights[i] != nil {
			p.wantFlying--
		}
	}
	p.have.Set(i)
	p.missing--
	p.primed = true
	if ps := p.peers[from]; ps != nil && from != Origin {
		ps.lastDone = t
	}
	if f := p.flights[i]; f != nil {
		for _, r := range f.reqs {
			if r.peer != from {
				cancel = append(cancel, r.peer)
			}
		}
		for len(f.reqs) > 0 {
			p.removeRequest(i, f.reqs[0].peer)
		}
	}
	p.removeDue(i)
	delete(p.originFailed, i)
	p.refresh(i)
	return cancel
}

// Failed records that the request for chunk i to peer ended without the
// chunk (REJECT, timeout, bad hash). If no other request for i is
// outstanding, i becomes pickable again.
func (p *Picker) Failed(i int, peer PeerKey) {
	if !p.valid(i) {
		return
	}
	if peer == Origin {
		p.originFailed[i] = true
	}
	p.removeRequest(i, peer)
}

// PeerGone releases every request outstanding to peer and forgets it. The
// session must also remove the peer's bitfield from Availability.
func (p *Picker) PeerGone(peer PeerKey) {
	ps := p.peers[peer]
	if ps != nil {
		for len(ps.chunks) > 0 {
			p.removeRequest(ps.chunks[0], peer)
		}
		delete(p.peers, peer)
		return
	}
	if peer == Origin {
		// Origin requests have no queue; find them the slow way (rare).
		for _, i := range slices.Clone(p.flightList) {
			p.removeRequest(i, Origin)
		}
	}
}

func (f *flight) requestedFrom(peer PeerKey) bool {
	for _, r := range f.reqs {
		if r.peer == peer {
			return true
		}
	}
	return false
}

func (p *Picker) removeRequest(i int, peer PeerKey) {
	f := p.flights[i]
	if f == nil {
		return
	}
	k := slices.IndexFunc(f.reqs, func(r request) bool { return r.peer == peer })
	if k < 0 {
		return
	}
	f.reqs = slices.Delete(f.reqs, k, k+1)
	if ps := p.peers[peer]; ps != nil {
		if q := slices.Index(ps.chunks, i); q >= 0 {
			ps.chunks = slices.Delete(ps.chunks, q, q+1)
			ps.at = slices.Delete(ps.at, q, q+1)
		}
	}
	if len(f.reqs) == 0 {
		last := p.flightList[len(p.flightList)-1]
		p.flightList[f.idx] = last
		p.flights[last].idx = f.idx
		p.flightList = p.flightList[:len(p.flightList)-1]
		delete(p.flights, i)
		if p.want.Has(i) && !p.have.Has(i) {
			p.wantFlying--
		}
		p.refresh(i)
	}
}

// SetEdge declares chunks at or past edge not published yet, as at a live
// window's edge: they are neither picked nor sent to the origin (not even
// with a deadline) until a later SetEdge moves past them. The default edge
// is Chunks: everything published. Moving the edge back is allowed.
func (p *Picker) SetEdge(edge int) {
	edge = max(0, min(edge, p.cfg.Chunks))
	old := p.edge
	p.edge = edge
	for i := min(old, edge); i < max(old, edge); i++ {
		p.refresh(i)
	}
}

// Edge is the first chunk not published yet (Chunks when all are).
func (p *Picker) Edge() int { return p.edge }

// refresh keeps i in the rarest-first order exactly when the background lane
// may pick it: published, wanted, missing, not in flight, not in the
// deadline lane.
func (p *Picker) refresh(i int) {
	_, due := p.dueAt[i]
	if !p.want.Has(i) || p.have.Has(i) || p.flights[i] != nil || due || i >= p.edge {
		p.avail.exclude(i)
	} else {
		p.avail.include(i)
	}
}

func (p *Picker) valid(i int) bool { return i >= 0 && i < p.cfg.Chunks }

// InFlightTo is the number of sources chunk i is requested from.
func (p *Picker) InFlightTo(i int) int {
	if f := p.flights[i]; f != nil {
		return len(f.reqs)
	}
	return 0
}
