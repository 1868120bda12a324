package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm/policy"
	"github.com/shoal-cdn/shoal/wire"
)

// Errors of a session.
var (
	ErrBadChunk = errors.New("bad chunk")
	ErrProtocol = errors.New("protocol violation")
	ErrBanned   = errors.New("peer banned")
	ErrClosed   = errors.New("session closed")
)

// Config tunes a Session. Zero values take the defaults.
type Config struct {
	Content *Content
	Store   Store
	Origin  Origin // nil (untyped): peers only
	Clock   core.Clock
	Rand    *rand.Rand
	Logger  *slog.Logger

	// Upload caps what this session sends to peers (shared across sessions
	// when the same bucket is passed to several). Nil: unlimited.
	Upload *Bucket
	// Grace is how long the swarm gets before chunks no connected peer has
	// go to the origin (default policy.DefaultGrace).
	Grace time.Duration
	// OriginParallel bounds the origin lane's requests in flight (default
	// policy.DefaultOriginParallel).
	OriginParallel int
	// Gate is the peer's cap on origin requests in flight and its back-off
	// after origin failures, shared by all its sessions. Nil: a gate of the
	// session's own (OriginParallel plus one FetchFromOrigin's worth).
	Gate *OriginGate
	// MaxPeers caps connections in this swarm (default policy.DefaultMaxPeers).
	MaxPeers int
	// Tick is the period of the control loop: choking, origin fallback,
	// timeouts (default policy.DefaultTick).
	Tick time.Duration
	// RequestTimeout fails a peer request not answered in time (default 15s).
	RequestTimeout time.Duration
	// OriginAssist makes the origin a seeder with spare capacity rather
	// than a last resort: origin slots the fallback lane leaves free fetch
	// chunks we lack that no source is fetching for us, rarest first. A
	// swarm then finishes sooner but the origin serves several copies
	// (benchmarks measure both regimes). Off by default: a flash crowd
	// costs the origin about one copy.
	OriginAssist bool
	// AssistBudget caps, in bytes, what OriginAssist fetches (beyond what
	// the origin lane fetches as designated or as a takeover); 0: no cap.
	// With a cap, the swarm's peers reshape their budgets around a sprint
	// leader (policy.PlanSprint): one peer may fetch up to twice it, the
	// others a little less.
	// It is how a user trades origin egress for completion time: about
	// one copy for the whole swarm with OriginAssist off, up to one copy
	// plus the sum of the peers' budgets with it on.
	AssistBudget int64
	// PickOrder is the picker's background order (policy.RarestFirst by
	// default); the simulator takes the same knob.
	PickOrder policy.Order
	// Trust is the peer-wide reputation and ban list this session feeds
	// and obeys (one for every session of a peer, see NewTrust). Nil: a
	// Trust of the session's own, in memory, so bans last as long as the
	// session.
	Trust *Trust
	// OnDemand makes the session fetch only what its readers ask for
	// (Want): a range and its read-ahead, a rendition being played. It
	// still serves everything it holds. False fetches the whole content
	// (`shoal get` of a whole content, a prefetch-all policy).
	OnDemand bool
	// Access is the swarm's token policy (see Access); nil: an open swarm.
	Access *Access
	// RemotePeers bounds the gossip summaries kept of peers (default
	// DefaultRemotePeers); RemoteTTL is how long each counts (default
	// DefaultRemoteTTL). See OfferSummary.
	RemotePeers int
	RemoteTTL   time.Duration
	// Mode is the session's P2P mode when it starts (default ModeOn);
	// SetMode changes it live.
	Mode Mode
	// SingleHaves makes the session announce each chunk in a HAVE frame of
	// its own and not offer FlagHaveBatch, as a peer predating batched
	// HAVEs does (compatibility tests). Off: peers that set FlagHaveBatch
	// get every wake's announcements as Haves frames.
	SingleHaves bool
}

// ingestParallel bounds the peer chunks a session verifies and stores at
// once: enough to overlap one chunk's fsync with the next ones' hashing and
// reading, few enough to bound the memory held by chunks in flight.
const ingestParallel = 4

// Stats is a snapshot of what a session has done.
type Stats struct {
	Chunks, Have    int
	BytesFromPeers  int64 // bytes of chunks a peer delivered first (duplicates not counted)
	BytesFromOrigin int64 // bytes of chunks the origin delivered first
	BytesUploaded   int64 // payload bytes of the DATA frames sent to peers
	// PeerDataReceived is the payload bytes of every well-formed DATA
	// frame peers sent us, duplicates and late answers to cancelled
	// requests included: what the network carried, where BytesFromPeers
	// is what it delivered first.
	PeerDataReceived int64
	// OriginDataReceived is the payload bytes of every chunk the origin
	// sent us, copies a peer had already delivered included: with
	// PeerDataReceived, the payload this peer's download carried.
	OriginDataReceived int64
	Mode               Mode // the session's P2P mode (SetMode)
	Peers              int
	BadChunks          int64
	Bans               int64
	Wanted             int   // chunks readers want (every chunk unless on demand)
	Lost               int64 // held chunks that left the cache (evicted, corrupt, purged)
	MinAvailability    int   // fewest connected peers holding any chunk we lack (rare-chunk scarcity)
	RareChunks         int   // chunks we lack that no connected peer has
	OriginRequests     int64
	OriginErrors       int64
	// HaveFrames is the frames announcing chunks sent to peers (Have and
	// Haves); Haves is the chunk announcements they carried. Haves per
	// frame is how well a burst of received chunks was batched.
	HaveFrames int64
	Haves      int64
	Complete   bool
}

// Session is one content's swarm on one peer.
type Session struct {
	cfg      Config
	c        *Content
	trust    *Trust // cfg.Trust or the session's own; safe for concurrent use
	self     netx.PeerID
	log      *slog.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{} // closed the first time every chunk is held
	closed   chan struct{}
	selfSeed uint64 // policy.PeerSeed of self, for the origin designation
	unwatch  func() // stops the store's removal notifications

	mu            sync.Mutex
	picker        *policy.Picker          // guarded by mu
	choker        *policy.Choker          // guarded by mu
	peers         map[netx.PeerID]*peer   // guarded by mu
	waiters       map[int][]chan struct{} // guarded by mu: chunk → WaitChunk callers
	origin        int                     // guarded by mu: origin requests in flight
	assisted      int64                   // guarded by mu: bytes asked of the origin by OriginAssist
	originWait    map[int]time.Time       // guarded by mu: no origin retry before
	originFails   map[int]int             // guarded by mu: consecutive failed origin fetches per chunk
	originFlights map[int]chan struct{}   // guarded by mu: origin fetches in flight, closed when each ends (one per chunk at a time)
	lane          *policy.OriginLane      // guarded by mu: origin designation, takeover clocks, origin latency
	complete      bool                    // guarded by mu: every chunk held
	doneClosed    bool                    // guarded by mu: done is closed
	wantRef       []int32                 // guarded by mu: per chunk, the Interests covering it
	originRef     []int32                 // guarded by mu: per chunk, those of them not peer-only
	// stallErr is set while the store cannot take chunks (a full cache
	// disk): nothing is fetched, and readers are answered with it rather
	// than left waiting. stall is closed when it is set.
	stallErr error         // guarded by mu
	stall    chan struct{} // guarded by mu
	// arrived is closed, and replaced, whenever a chunk is received or the
	// session stalls (Arrived).
	arrived chan struct{} // guarded by mu
	// remotes are the latest gossip summaries of peers (remote.go).
	remotes map[netx.PeerID]*remotePeer // guarded by mu
	// refusals rate-limits the audit events of refused peers (access.go).
	refusals refusalLog
	// mode is how the session uses peers (SetMode).
	mode Mode // guarded by mu

	ingest chan struct{} // semaphore: peer chunks being verified and stored
	bufs   *bufPool      // chunk-sized payload buffers

	fromPeers, fromOrigin, uploaded atomic.Int64
	peerDataIn, originDataIn        atomic.Int64
	badChunks, bans, lost           atomic.Int64
	originReqs, originErrs          atomic.Int64
	haveFrames, havesSent           atomic.Int64
	wg                              sync.WaitGroup
}

// NewSession builds a session whose have-set comes from the store.
func NewSession(self netx.PeerID, cfg Config) *Session {
	if cfg.Clock == nil {
		cfg.Clock = core.RealClock{}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Grace <= 0 {
		cfg.Grace = policy.DefaultGrace
	}
	if cfg.OriginParallel <= 0 {
		cfg.OriginParallel = policy.DefaultOriginParallel
	}
	if cfg.Gate == nil {
		cfg.Gate = NewOriginGate(cfg.OriginParallel+fetchParallel, cfg.Clock)
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = policy.DefaultMaxPeers
	}
	if cfg.Tick <= 0 {
		cfg.Tick = policy.DefaultTick
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 15 * time.Second
	}
	if !cfg.Mode.Valid() {
		cfg.Mode = ModeOff // an unknown mode allows the least
	}
	c := cfg.Content
	have := policy.NewBitset(c.Len())
	for i := range c.Len() {
		if c.Known(i) && cfg.Store.Has(c.Hash(i)) {
			have.Set(i)
		}
	}
	// Only chunks whose hash is known can be fetched: their file's layer
	// is loaded (SetLayer adds the rest as they come).
	want := policy.NewBitset(c.Len())
	for i := range c.Len() {
		if !cfg.OnDemand && c.Known(i) {
			want.Set(i)
		}
	}
	if cfg.Trust == nil {
		cfg.Trust = NewTrust(TrustConfig{Clock: cfg.Clock, Logger: cfg.Logger})
	}
	s := &Session{
		cfg: cfg, c: c, self: self, trust: cfg.Trust,
		log:         cfg.Logger.With("content", c.ID.Short()),
		done:        make(chan struct{}),
		closed:      make(chan struct{}),
		selfSeed:    policy.PeerSeed(policy.PeerKey(self)),
		lane:        policy.NewOriginLane(),
		peers:       map[netx.PeerID]*peer{},
		waiters:     map[int][]chan struct{}{},
		originWait:  map[int]time.Time{},
		originFails: map[int]int{},
		stall:       make(chan struct{}),
		arrived:     make(chan struct{}),

		originFlights: map[int]chan struct{}{},
		ingest:        make(chan struct{}, ingestParallel),
		bufs:          newBufPool(int(c.Manifest.ChunkSize)),
		wantRef:       make([]int32, c.Len()),
		originRef:     make([]int32, c.Len()),
		mode:          cfg.Mode,
	}
	s.picker = policy.NewPicker(policy.PickerConfig{
		Chunks: c.Len(), ChunkSize: c.Manifest.ChunkSize, Have: have,
		Rand: cfg.Rand, Self: policy.PeerSeed(policy.PeerKey(self)), Grace: cfg.Grace, AssumedRate: policy.DefaultAssumedRate, Order: cfg.PickOrder, Want: want,
	})
	s.picker.SetMode(s.mode)
	s.choker = policy.NewChoker(policy.ChokerConfig{Rand: cfg.Rand})
	s.checkCompleteLocked()
	return s
}

// checkCompleteLocked keeps complete in step with the picker and closes
// done the first time every chunk is held.
func (s *Session) checkCompleteLocked() {
	s.complete = s.picker.Done()
	if s.complete && !s.doneClosed {
		s.doneClosed = true
		close(s.done)
	}
}

// running reports whether Run has started and not ended.
func (s *Session) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx != nil && s.ctx.Err() == nil
}

// Content is what the session shares.
func (s *Session) Content() *Content { return s.c }

// Done is closed once every chunk is held (verified and stored).
func (s *Session) Done() <-chan struct{} { return s.done }

// Run drives the control loop until ctx ends, then disconnects every peer.
func (s *Session) Run(ctx context.Context) error {
	s.Begin(ctx)
	defer s.shutdown()
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		s.tick()
		select {
		case <-s.ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Begin makes the session accept peers under ctx before Run's goroutine is
// scheduled; Run calls it too. Only the first call counts.
func (s *Session) Begin(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(ctx)
		s.unwatch = s.cfg.Store.OnRemove(s.removed)
	}
}

func (s *Session) context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

func (s *Session) shutdown() {
	s.mu.Lock()
	if s.unwatch != nil {
		s.unwatch()
	}
	peers := make([]*peer, 0, len(s.peers))
	for _, p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		p.close(nil)
	}
	s.wg.Wait()
	close(s.closed)
	s.mu.Lock()
	s.wakeArrivedLocked() // its waiters see closed: Arrived returns it from now on
	s.mu.Unlock()
}

// Stats returns a snapshot.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Chunks: s.c.Len(), Have: s.c.Len() - s.picker.Missing(),
		BytesFromPeers: s.fromPeers.Load(), BytesFromOrigin: s.fromOrigin.Load(),
		BytesUploaded: s.uploaded.Load(), Peers: len(s.peers),
		PeerDataReceived: s.peerDataIn.Load(), OriginDataReceived: s.originDataIn.Load(), Mode: s.mode,
		BadChunks: s.badChunks.Load(), Bans: s.bans.Load(),
		OriginRequests: s.originReqs.Load(), OriginErrors: s.originErrs.Load(),
		Complete: s.complete, MinAvailability: -1, Lost: s.lost.Load(),
		HaveFrames: s.haveFrames.Load(), Haves: s.havesSent.Load(),
		Wanted: s.c.Len(),
	}
	if s.cfg.OnDemand {
		st.Wanted = 0
		for _, r := range s.wantRef {
			if r > 0 {
				st.Wanted++
			}
		}
	}
	av := s.picker.Availability()
	for i := range s.c.Len() {
		if s.picker.Has(i) || !s.picker.Wanted(i) {
			continue // scarcity of what we fetch, not of what nobody asked for
		}
		n := av.Count(i)
		if n == 0 {
			st.RareChunks++
		}
		if st.MinAvailability < 0 || n < st.MinAvailability {
			st.MinAvailability = n
		}
	}
	if st.MinAvailability < 0 {
		st.MinAvailability = 0
	}
	return st
}

// BytesHeld is the number of content bytes held (verified and stored).
func (s *Session) BytesHeld() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for i := range s.c.Len() {
		if s.picker.Has(i) {
			n += int64(s.c.Size(i))
		}
	}
	return n
}

// Arrived returns a channel that is closed when the next chunk is received,
// the session stalls (Stalled) or it ends: a reader that takes chunks in
// whatever order they come waits on it, then looks with Held.
func (s *Session) Arrived() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return s.closed
	default:
	}
	if s.stallErr != nil {
		return s.stall // closed while stalled
	}
	return s.arrived
}

func (s *Session) wakeArrivedLocked() {
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// Held sets held[k] to whether chunk idx[k] is held, for every k (held must
// be at least as long as idx).
func (s *Session) Held(idx []int, held []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, i := range idx {
		held[k] = s.picker.Has(i)
	}
}

// Has reports whether chunk i is held.
func (s *Session) Has(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.picker.Has(i)
}

// WaitChunk blocks until chunk i is held or ctx ends. With a deadline set
// (Prioritize), the deadline lane and the origin make sure it comes in time.
// While the store cannot take chunks (a full cache disk) it fails at once,
// or as soon as that happens, with an error wrapping store.ErrWriteFailed.
func (s *Session) WaitChunk(ctx context.Context, i int) error {
	for {
		if s.Has(i) {
			return nil
		}
		werr := s.cfg.Store.Writable() // a reader waits: a probe may run
		s.mu.Lock()
		if done, err := s.settledLocked(i, werr); done {
			s.mu.Unlock()
			return err
		}
		ch, stall := make(chan struct{}), s.stall
		s.waiters[i] = append(s.waiters[i], ch)
		s.mu.Unlock()
		select {
		case <-ch:
			return nil
		case <-stall: // the next round returns its error
			s.dropWaiter(i, ch)
		case <-ctx.Done():
			s.dropWaiter(i, ch)
			return ctx.Err()
		case <-s.closed:
			return ErrClosed
		}
	}
}

// settledLocked says whether a wait for chunk i is over: it is held (nil),
// or the store cannot take chunks (werr, the store's state, as
// storeStateLocked records it), so it will not come (that error).
func (s *Session) settledLocked(i int, werr error) (bool, error) {
	if s.picker.Has(i) {
		return true, nil
	}
	s.storeStateLocked(werr)
	if err := s.stallErr; err != nil {
		return true, fmt.Errorf("%s: %w", s.c.Describe(i), err)
	}
	return false, nil
}

// dropWaiter removes a WaitChunk caller that stopped waiting for chunk i.
func (s *Session) dropWaiter(i int, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.waiters[i]
	for k, w := range ws {
		if w == ch {
			ws = append(ws[:k], ws[k+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(s.waiters, i)
	} else {
		s.waiters[i] = ws
	}
}

// storeStateLocked follows the store's writability (err from Writable or
// WriteErr): an unwritable store stalls the session, a writable one ends
// the stall.
func (s *Session) storeStateLocked(err error) {
	switch {
	case err != nil && s.stallErr == nil:
		s.stallErr = err
		close(s.stall)
		s.wakeArrivedLocked()
		s.log.Debug("fetching paused: the cache cannot store chunks", "err", err)
	case err != nil:
		s.stallErr = err
	case s.stallErr != nil:
		s.stallErr = nil
		s.stall = make(chan struct{})
		s.log.Debug("fetching resumed: the cache stores chunks again")
		s.kickLocked()
	}
}

// Stalled is the error that stops the session's fetching while the store
// cannot take chunks (nil when it can).
func (s *Session) Stalled() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stallErr
}

// Prioritize gives chunks [from, to) a due time: chunk from is due at
// first, the others one spacing apart. The deadline lane fetches them
// earliest first, from the origin when no peer can make it. Only wanted
// chunks (under an Interest, or every chunk unless on demand) take a
// deadline: releasing the last Interest on a chunk clears it.
func (s *Session) Prioritize(from, to int, first time.Time, spacing time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := max(from, 0); i < to && i < s.c.Len(); i++ {
		if !s.picker.Has(i) && s.picker.Wanted(i) && s.c.Known(i) {
			if d, ok := s.picker.Deadline(i); !ok || first.Before(d) {
				s.picker.SetDeadline(i, first)
			}
		}
		first = first.Add(spacing)
	}
	s.kickLocked() // offer the new deadlines to peers now, before the origin lane's next look
}

// tick runs the periodic policy: choking, request timeouts, top-ups and the
// origin lane.
func (s *Session) tick() {
	s.accessTick()
	// The store's state first, outside mu: while chunks are wanted, a
	// store made unwritable by a failed write is probed (on its own
	// back-off) so fetching resumes by itself when space returns.
	s.mu.Lock()
	wants := !s.picker.Satisfied()
	s.mu.Unlock()
	werr := s.cfg.Store.WriteErr()
	if werr != nil && wants {
		werr = s.cfg.Store.Writable()
	}
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storeStateLocked(werr)
	s.rechokeLocked(now)
	for _, p := range s.peers {
		for i, at := range p.requested {
			if now.Sub(at) > s.cfg.RequestTimeout {
				s.trust.Record(p.id, policy.TimedOut, 0)
				delete(p.requested, i)
				s.picker.Failed(i, p.key)
				p.send(&wire.Cancel{Index: uint32(i), Length: uint32(s.c.Size(i))})
			}
		}
		s.topUpLocked(p, now)
	}
	s.originLaneLocked(now)
}

// rechokeLocked asks the choker whom to unchoke and tells the peers.
func (s *Session) rechokeLocked(now time.Time) {
	states := make([]policy.PeerState, 0, len(s.peers))
	sp := s.sprintLocked()
	for _, p := range s.peers {
		states = append(states, policy.PeerState{
			Key: p.key, Interested: p.peerInterested,
			DownRate: p.down.At(now), UpRate: p.up.At(now),
			Score:  s.trust.Score(p.id),
			Sprint: sp.On && !sp.Lead && p.fetchAll && p.seed == sp.Leader,
		})
	}
	unchoke := map[policy.PeerKey]bool{}
	// Holding all that its readers want, a peer seeds: it unchokes by fair
	// rotation, not by what it downloads. The choker keeps its rotation in
	// every mode, so that back on it unchokes at once whom it would have; a
	// mode that uploads nothing overrides it and chokes everyone.
	for _, k := range s.choker.Tick(now, s.picker.Satisfied(), states) {
		unchoke[k] = s.mode.UploadToPeers()
	}
	for _, p := range s.peers {
		switch {
		case unchoke[p.key] && p.amChoking:
			p.amChoking = false
			p.send(&wire.Unchoke{})
		case !unchoke[p.key] && !p.amChoking:
			p.amChoking = true
			p.dropServes()
			p.send(&wire.Choke{})
		}
	}
}

// topUpLocked keeps requests in flight to p sized to its measured rate.
func (s *Session) topUpLocked(p *peer, now time.Time) {
	if s.peers[p.id] != p {
		return // closed while its reader finished a message
	}
	if p.peerChoking || !p.amInterested || s.picker.Done() || s.stallErr != nil || !s.mode.FetchFromPeers() {
		return // nothing wanted from p, or nowhere to put it
	}
	rate := p.down.At(now)
	s.picker.SetRate(p.key, rate)
	depth := policy.RequestDepth(rate, s.c.Manifest.ChunkSize)
	n := depth - len(p.requested)
	if n <= 0 {
		return
	}
	src := policy.Source{Key: p.key, Has: p.bits, Rate: rate}
	if s.trust.Score(p.id) < policy.DistrustScore {
		src.Better = s.trustedHoldersLocked(p)
	}
	for _, i := range s.picker.Next(now, src, n) {
		s.picker.Requested(i, p.key, now)
		p.requested[i] = now
		p.asked.Set(i)
		p.send(&wire.Request{Index: uint32(i), Length: uint32(s.c.Size(i))})
	}
}

// trustedHoldersLocked is the chunks that peers other than p, not
// distrusted and ready to serve us (unchoking us, and asked), hold: the
// picker leaves those to them rather than ask the distrusted p.
func (s *Session) trustedHoldersLocked(p *peer) policy.Haver {
	var bits []*wire.Bitfield
	for _, q := range s.peers {
		if q != p && !q.peerChoking && q.amInterested && s.trust.Score(q.id) >= policy.DistrustScore {
			bits = append(bits, q.bits)
		}
	}
	if len(bits) == 0 {
		return nil
	}
	return policy.HasFunc(func(i int) bool {
		for _, b := range bits {
			if b.Has(i) {
				return true
			}
		}
		return false
	})
}

// updateInterestLocked sends INTERESTED/NOT_INTERESTED when p.useful
// crosses zero, or the mode starts or stops fetching from peers.
func (s *Session) updateInterestLocked(p *peer) {
	want := p.useful > 0 && s.mode.FetchFromPeers()
	if want != p.amInterested {
		p.amInterested = want
		if want {
			p.send(&wire.Interested{})
		} else {
			p.send(&wire.NotInterested{})
		}
	}
}

// received records a verified, stored chunk i from src (a peer key or
// policy.Origin): cancels duplicates, tells every peer, wakes waiters, and
// marks chunks with the same hash as held too.
func (s *Session) receivedLocked(i int, src policy.PeerKey, now time.Time) {
	for _, j := range s.c.Indexes(s.c.Hash(i)) {
		if s.picker.Has(j) {
			continue
		}
		for _, k := range s.picker.Received(j, src, now) {
			if k == policy.Origin {
				continue // an origin fetch in flight just finishes
			}
			if p := s.peers[netx.PeerID(k)]; p != nil {
				if _, ok := p.requested[j]; ok {
					delete(p.requested, j)
					p.send(&wire.Cancel{Index: uint32(j), Length: uint32(s.c.Size(j))})
				}
			}
		}
		if p := s.peers[netx.PeerID(src)]; p != nil {
			delete(p.requested, j)
		}
		s.lane.Forget(j)
		for _, ch := range s.waiters[j] {
			close(ch)
		}
		delete(s.waiters, j)
		s.wakeArrivedLocked()
		wanted, announce := s.picker.Wanted(j), s.mode.UploadToPeers()
		for _, p := range s.peers {
			if p.bits.Has(j) && wanted {
				p.useful--
				s.updateInterestLocked(p)
			}
			// A chunk we would not serve is not advertised. One the peer
			// holds is (no have-suppression): what we offer is how it
			// tells a peer that shares from a leech (policy.Shares), and
			// its origin lane waits on sharers only.
			if announce {
				p.send(&wire.Have{Index: uint32(j)})
			}
		}
	}
	if s.picker.Done() && !s.complete {
		s.checkCompleteLocked()
		s.log.Info("complete", "from_peers", s.fromPeers.Load(), "from_origin", s.fromOrigin.Load())
		s.rechokeLocked(now)
	}
}

// offendedLocked bans the sender of a chunk that failed verification from
// every swarm (the Trust is peer-wide), tells the Trust's reporter, and
// disconnects it.
func (s *Session) offendedLocked(o Offence, why string) {
	if s.trust.Offended(o, why) {
		s.bans.Add(1)
	}
	if p := s.peers[o.Peer]; p != nil {
		go p.close(fmt.Errorf("%w: %s", ErrBanned, why))
	}
}

// Banned reports whether a peer is banned (from every swarm of this peer).
func (s *Session) Banned(id netx.PeerID) bool { return s.trust.Banned(id) }
