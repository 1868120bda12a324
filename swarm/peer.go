package swarm

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/store"
	"github.com/shoal-cdn/shoal/swarm/policy"
	"github.com/shoal-cdn/shoal/wire"
)

// maxServeQueue bounds the requests a peer may have queued with us; past it
// we answer REJECT(busy) instead of growing without bound.
const maxServeQueue = 256

// maxCtrlQueue bounds the control messages queued for one peer. What we
// queue of our own accord is bounded by the pipelining depth and the
// choking rounds; what a peer makes us queue is a REJECT per request it
// sends, so one that keeps requesting while it reads nothing would grow the
// queue without end. A peer whose requests would queue a REJECT past this
// is disconnected.
const maxCtrlQueue = 1024

// maxWriteBatch is about the most bytes of control frames the writer
// gathers into one Write; more queued than that goes out in several.
const maxWriteBatch = 64 << 10

// peer is one connection in a session. A reader goroutine handles what the
// peer sends; a writer goroutine sends control messages first, then serves
// the peer's requests one chunk at a time under the upload cap.
//
// HAVEs are not queued as messages: each wake of the writer sends every
// chunk announced since the last one in one Write, as Haves frames when
// the peer set FlagHaveBatch, so a burst of received chunks does not wake
// the peer's reader once per chunk.
type peer struct {
	s      *Session
	id     netx.PeerID
	key    policy.PeerKey
	st     netx.Stream
	dialer netx.PeerID // who opened the stream, for duplicate resolution
	seed   uint64      // origin-lane rank seed of the peer's ID (policy.PeerSeed)

	// Guarded by s.mu.
	bits           *wire.Bitfield
	amChoking      bool // we choke them
	amInterested   bool
	peerChoking    bool // they choke us
	peerInterested bool
	useful         int               // chunks they have that we lack and want
	fetchAll       bool              // their handshake said FlagFetchAll: origin-designation candidate
	requested      map[int]time.Time // our requests to them
	asked          *policy.Bitset    // chunks ever requested from them: DATA outside it is unsolicited
	down, up       policy.Rate
	sentTo         int64 // DATA payload bytes we sent them
	lastRecv       time.Time
	tokenExpiry    time.Time // when their access token expires (zero: not checked)
	sentToken      string    // the access token we last presented to them
	refreshTok     string    // the last token they sent as a refresh
	refreshAt      time.Time // when: refreshes closer than refreshMinGap are ignored

	lastIngest chan struct{} // owned by the read loop: closed once the last chunk it passed on is recorded

	// batch says the peer takes Haves frames (its handshake set
	// FlagHaveBatch and Config.SingleHaves is off); set before the
	// writer starts, read-only after.
	batch bool

	qmu    sync.Mutex
	ctrl   []wire.Message // guarded by qmu
	serves []wire.Request // guarded by qmu
	// haves are the chunks to announce on the writer's next round, each
	// once (queued marks them): at most one entry per chunk of the content.
	haves  []uint32       // guarded by qmu
	queued *policy.Bitset // guarded by qmu; allocated on the first HAVE
	wbuf   []byte         // owned by the writer: frames gathered for one Write
	wake   chan struct{}
	quit   chan struct{}
	once   sync.Once
}

func newPeer(s *Session, st netx.Stream, dialer netx.PeerID, bits *wire.Bitfield, now time.Time) *peer {
	id := st.RemotePeer()
	return &peer{
		s: s, id: id, key: policy.PeerKey(id), st: st, dialer: dialer, bits: bits,
		seed:      policy.PeerSeed(policy.PeerKey(id)),
		amChoking: true, peerChoking: true,
		requested: map[int]time.Time{},
		asked:     policy.NewBitset(bits.Len()),
		down:      policy.Rate{},
		up:        policy.Rate{},
		lastRecv:  now,
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
	}
}

// send queues a control message. A HAVE joins the next batch of
// announcements; a DONT_HAVE withdraws a HAVE of the same chunk still
// queued, and a bitfield (the whole truth when queued) every queued HAVE,
// so what the peer ends up believing is what it would have if each message
// went out on its own, in order.
func (p *peer) send(m wire.Message) {
	p.qmu.Lock()
	switch m := m.(type) {
	case *wire.Have:
		p.queueHaveLocked(m.Index)
		p.qmu.Unlock()
		p.signal()
		return
	case *wire.DontHave:
		p.unqueueHaveLocked(m.Index)
	case *wire.BitfieldUpdate:
		for _, i := range p.haves {
			p.queued.Clear(int(i))
		}
		p.haves = p.haves[:0]
	}
	p.ctrl = append(p.ctrl, m)
	p.qmu.Unlock()
	p.signal()
}

func (p *peer) queueHaveLocked(i uint32) {
	if p.queued == nil {
		p.queued = policy.NewBitset(p.s.c.Len())
	}
	if p.queued.Has(int(i)) {
		return
	}
	p.queued.Set(int(i))
	p.haves = append(p.haves, i)
}

func (p *peer) unqueueHaveLocked(i uint32) {
	if !p.queued.Has(int(i)) {
		return
	}
	p.queued.Clear(int(i))
	if k := slices.Index(p.haves, i); k >= 0 {
		p.haves = slices.Delete(p.haves, k, k+1)
	}
}

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// enqueueServe queues one of the peer's requests; false when the queue is full.
func (p *peer) enqueueServe(r wire.Request) bool {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	if len(p.serves) >= maxServeQueue {
		return false
	}
	p.serves = append(p.serves, r)
	p.signal()
	return true
}

func (p *peer) cancelServe(r wire.Cancel) {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	for k, q := range p.serves {
		if q.Index == r.Index && q.Offset == r.Offset {
			p.serves = append(p.serves[:k], p.serves[k+1:]...)
			return
		}
	}
}

// dropServes forgets queued requests when we choke the peer (BitTorrent
// semantics: a choke discards what was asked).
func (p *peer) dropServes() {
	p.qmu.Lock()
	p.serves = nil
	p.qmu.Unlock()
}

// pop takes everything queued for the writer: control messages, the HAVEs
// to announce (ascending, into haves' array), and when neither is pending
// one request to serve.
func (p *peer) pop(haves []uint32) (ctrl []wire.Message, _ []uint32, serve *wire.Request) {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	ctrl, p.ctrl = p.ctrl, nil
	haves = append(haves[:0], p.haves...)
	for _, i := range p.haves {
		p.queued.Clear(int(i))
	}
	p.haves = p.haves[:0]
	if len(ctrl) == 0 && len(haves) == 0 && len(p.serves) > 0 {
		r := p.serves[0]
		p.serves = p.serves[1:]
		serve = &r
	}
	slices.Sort(haves)
	return ctrl, haves, serve
}

// close ends the connection once, with a reason for the log (nil: normal).
func (p *peer) close(reason error) {
	p.once.Do(func() {
		close(p.quit)
		if reason != nil {
			p.st.Reset()
		} else {
			p.st.Close()
		}
		s := p.s
		s.mu.Lock()
		if s.peers[p.id] == p {
			delete(s.peers, p.id)
			s.picker.Availability().RemoveBitfield(p.bits)
			s.picker.PeerGone(p.key)
			p.requested = nil
		}
		s.mu.Unlock()
		if reason != nil {
			s.log.Info("peer disconnected", "peer", p.id.Short(), "reason", reason)
		}
	})
}

// writeLoop sends queued control messages and serves requests.
func (p *peer) writeLoop() {
	s := p.s
	defer s.wg.Done()
	keepAlive := time.NewTicker(30 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-p.wake:
		case <-keepAlive.C:
			p.send(&wire.KeepAlive{})
			continue
		case <-p.quit:
			return
		}
		var haves []uint32
		for {
			var ctrl []wire.Message
			var serve *wire.Request
			ctrl, haves, serve = p.pop(haves)
			if len(ctrl) == 0 && len(haves) == 0 && serve == nil {
				break
			}
			if err := p.writeControl(ctrl, haves); err != nil {
				p.close(fmt.Errorf("write: %w", err))
				return
			}
			if serve != nil {
				if err := p.serve(*serve); err != nil {
					p.close(err)
					return
				}
			}
		}
	}
}

// writeControl sends control messages, then the frames announcing haves,
// gathered into one Write (several only past maxWriteBatch bytes): control
// messages first, so a HAVE queued after a DONT_HAVE of its chunk still
// arrives after it.
func (p *peer) writeControl(ctrl []wire.Message, haves []uint32) error {
	b := p.wbuf[:0]
	for _, m := range ctrl {
		var err error
		if b, err = wire.AppendFrame(b, m); err != nil {
			return err
		}
		if len(b) >= maxWriteBatch {
			if _, err := p.st.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	frames, announced := 0, len(haves)
	for len(haves) > 0 {
		n := min(len(haves), wire.MaxHaves)
		var k int
		var err error
		if b, k, err = wire.AppendHaves(b, haves[:n], p.batch); err != nil {
			return err
		}
		frames += k
		haves = haves[n:]
		if len(b) >= maxWriteBatch {
			if _, err := p.st.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	if len(b) > 0 {
		if _, err := p.st.Write(b); err != nil {
			return err
		}
	}
	p.s.haveFrames.Add(int64(frames))
	p.s.havesSent.Add(int64(announced))
	if cap(b) <= maxWriteBatch*2 {
		p.wbuf = b[:0] // keep a buffer of the usual size, not a rare burst's
	} else {
		p.wbuf = nil
	}
	return nil
}

// serve sends one requested range, read (and re-verified) from the store.
func (p *peer) serve(r wire.Request) error {
	s := p.s
	i := int(r.Index)
	buf := s.bufs.get(s.c.Size(i))
	defer s.bufs.put(buf) // WriteMessage has copied or sent it by then
	n, err := s.cfg.Store.ReadInto(s.c.Hash(i), buf)
	data := buf[:n]
	if err != nil || int(r.Offset+r.Length) > len(data) {
		return wire.WriteMessage(p.st, &wire.Reject{Index: r.Index, Offset: r.Offset, Length: r.Length, Reason: wire.ReasonNotHave})
	}
	if s.cfg.Upload != nil {
		if err := s.cfg.Upload.Wait(s.context(), int(r.Length)); err != nil {
			return err
		}
	}
	s.mu.Lock()
	allowed := !p.amChoking && s.mode.UploadToPeers()
	s.mu.Unlock()
	if !allowed {
		// Choked (or the mode changed) while this request waited: the
		// choke told the peer its requests are dropped.
		return nil
	}
	if err := wire.WriteMessage(p.st, &wire.Data{Index: r.Index, Offset: r.Offset, Payload: data[r.Offset : r.Offset+r.Length]}); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	s.uploaded.Add(int64(r.Length))
	s.mu.Lock()
	p.up.Add(s.cfg.Clock.Now(), int64(r.Length))
	p.sentTo += int64(r.Length)
	s.mu.Unlock()
	return nil
}

// readLoop handles everything the peer sends until the stream ends.
func (p *peer) readLoopWith(r *wire.Reader) {
	s := p.s
	defer s.wg.Done()
	for {
		m, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			p.close(err)
			return
		}
		if err := p.handle(m); err != nil {
			if errors.Is(err, ErrProtocol) {
				s.trust.Record(p.id, policy.Violated, 0)
			}
			p.close(err)
			return
		}
	}
}

func (p *peer) violation(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, a...))
}

// reject queues a REJECT of m; an error when the peer has so many
// control messages waiting that it is not reading what we send.
func (p *peer) reject(m *wire.Request, why wire.Reason) error {
	p.qmu.Lock()
	queued := len(p.ctrl)
	p.qmu.Unlock()
	if queued >= maxCtrlQueue {
		return fmt.Errorf("%w: %d control messages queued unread, the peer keeps requesting without reading", ErrProtocol, queued)
	}
	p.send(&wire.Reject{Index: m.Index, Offset: m.Offset, Length: m.Length, Reason: why})
	return nil
}

func (p *peer) handle(m wire.Message) error {
	s := p.s
	n := s.c.Len()
	now := s.cfg.Clock.Now()
	if d, ok := m.(*wire.Data); ok {
		return p.data(d, now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.lastRecv = now
	switch m := m.(type) {
	case *wire.KeepAlive:
	case *wire.Choke:
		p.peerChoking = true
		for i := range p.requested {
			s.picker.Failed(i, p.key)
		}
		clear(p.requested)
	case *wire.Unchoke:
		p.peerChoking = false
		s.topUpLocked(p, now)
	case *wire.Interested:
		p.peerInterested = true
	case *wire.NotInterested:
		p.peerInterested = false
	case *wire.Have:
		i := int(m.Index)
		if i >= n {
			return p.violation("HAVE %d of %d chunks", i, n)
		}
		if p.haveLocked(i) {
			s.updateInterestLocked(p)
			s.topUpLocked(p, now)
		}
	case *wire.Haves:
		if last := int(m.Indexes[len(m.Indexes)-1]); last >= n { // ascending: the last is the largest
			return p.violation("HAVES up to %d of %d chunks", last, n)
		}
		useful := false
		for _, i := range m.Indexes {
			useful = p.haveLocked(int(i)) || useful
		}
		if useful {
			s.updateInterestLocked(p)
			s.topUpLocked(p, now)
		}
	case *wire.DontHave:
		i := int(m.Index)
		if i >= n {
			return p.violation("DONT_HAVE %d of %d chunks", i, n)
		}
		if p.bits.Clear(i) {
			s.picker.Availability().RemoveHave(i)
			if !s.picker.Has(i) && s.picker.Wanted(i) {
				p.useful--
				s.updateInterestLocked(p)
			}
			if _, ok := p.requested[i]; ok {
				// It will answer REJECT; ask someone else now.
				delete(p.requested, i)
				s.picker.Failed(i, p.key)
			}
		}
	case *wire.BitfieldUpdate:
		if m.Bits.Len() != n {
			return p.violation("bitfield of %d bits for %d chunks", m.Bits.Len(), n)
		}
		s.picker.Availability().RemoveBitfield(p.bits)
		p.bits = m.Bits
		s.picker.Availability().AddBitfield(p.bits)
		p.useful = s.usefulLocked(p.bits)
		s.updateInterestLocked(p)
		s.topUpLocked(p, now)
	case *wire.Request:
		i := int(m.Index)
		if i >= n || int(m.Offset)+int(m.Length) > s.c.Size(i) {
			return p.violation("REQUEST %d+%d of chunk %d", m.Offset, m.Length, i)
		}
		switch {
		case p.amChoking || !s.mode.UploadToPeers():
			return p.reject(m, wire.ReasonChoked)
		case !s.picker.Has(i):
			return p.reject(m, wire.ReasonNotHave)
		case !p.enqueueServe(*m):
			return p.reject(m, wire.ReasonBusy)
		}
	case *wire.Cancel:
		p.cancelServe(*m)
	case *wire.Reject:
		i := int(m.Index)
		if _, ok := p.requested[i]; ok {
			// Choked and Busy are honest flow control; a chunk refused
			// while still advertised is a broken promise.
			if m.Reason == wire.ReasonNotHave && p.bits.Has(i) || m.Reason == wire.ReasonUnspecified {
				s.trust.Record(p.id, policy.Refused, 0)
			}
			delete(p.requested, i)
			s.picker.Failed(i, p.key)
		}
	case *wire.Token:
		s.refreshLocked(p, m.Token)
	case *wire.Handshake:
		return p.violation("second handshake")
	default:
		return p.violation("unexpected %v", m.Type())
	}
	return nil
}

// haveLocked records that the peer has chunk i (< the chunk count) and
// reports whether that made it useful to us for one more chunk.
func (p *peer) haveLocked(i int) bool {
	s := p.s
	if !p.bits.Set(i) {
		return false
	}
	s.picker.Availability().AddHave(i)
	if !s.picker.Has(i) && s.picker.Wanted(i) {
		p.useful++
		return true
	}
	return false
}

// data verifies and stores a chunk the peer sent. A chunk that does not hash
// right bans the sender from the swarm; the chunk is fetched elsewhere.
func (p *peer) data(d *wire.Data, now time.Time) error {
	s := p.s
	i := int(d.Index)
	if i >= s.c.Len() || d.Offset != 0 || len(d.Payload) != s.c.Size(i) {
		return p.violation("DATA %d+%d bytes for chunk %d", d.Offset, len(d.Payload), i)
	}
	s.peerDataIn.Add(int64(len(d.Payload)))
	s.mu.Lock()
	p.lastRecv = now
	_, pending := p.requested[i]
	everAsked := p.asked.Has(i)
	s.mu.Unlock()
	if !pending {
		s.bufs.put(d.Payload)
		if !everAsked {
			// Unsolicited chunks would cost us a read and a hash each:
			// a peer that pushes them is misbehaving, not late.
			return p.violation("DATA for chunk %d never requested", i)
		}
		return nil // late answer to a request we cancelled or timed out
	}
	// Verify and store off the read loop, a few chunks at a time per
	// session: the store fsyncs every chunk, and waiting for that inline
	// would leave the stream idle for most of each chunk's time. A full
	// pool blocks the read loop, which is the backpressure we want.
	select {
	case s.ingest <- struct{}{}:
	case <-p.quit:
		s.bufs.put(d.Payload)
		return nil
	}
	// Chunks are recorded in the order they arrived (prev → done), so
	// whoever watches Has sees the order the picker chose.
	prev, done := p.lastIngest, make(chan struct{})
	p.lastIngest = done
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		// The slot is held until recorded, so at most ingestParallel
		// chunks are held in memory; prev already holds one of its own.
		defer func() { <-s.ingest }()
		err := s.cfg.Store.Put(s.c.Hash(i), d.Payload)
		size := len(d.Payload)
		var bad [32]byte // evidence for a report: what the peer really sent
		if errors.Is(err, store.ErrHashMismatch) {
			bad = sha256.Sum256(d.Payload)
		}
		s.bufs.put(d.Payload) // Put has written it out
		if prev != nil {
			<-prev
		}
		if err := p.stored(i, size, err, bad, now); err != nil {
			p.close(err)
		}
	}()
	return nil
}

// stored records the outcome of verifying and storing chunk i from the
// peer; a chunk that does not hash right (bad is the SHA-256 of what was
// received) bans the peer.
func (p *peer) stored(i, size int, err error, bad [32]byte, now time.Time) error {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && !s.picker.Has(i) && !s.cfg.Store.Has(s.c.Hash(i)) {
		// Evicted between Put and now (a cache far smaller than what is
		// wanted): not held, so not claimed; the picker asks again.
		delete(p.requested, i)
		s.picker.Failed(i, p.key)
		p.down.Add(now, int64(size))
		return nil
	}
	if err == nil && s.picker.Has(i) {
		// Another source (end-game duplicate, the origin) delivered it while
		// we verified this copy: not new bytes, so not counted as such.
		delete(p.requested, i)
		p.down.Add(now, int64(size))
		s.topUpLocked(p, now)
		return nil
	}
	if err != nil {
		delete(p.requested, i)
		s.picker.Failed(i, p.key)
		if errors.Is(err, store.ErrHashMismatch) {
			s.badChunks.Add(1)
			why := fmt.Sprintf("%s: hash mismatch", s.c.Describe(i))
			s.offendedLocked(Offence{Peer: p.id, Content: s.c.ID, Chunk: i, Hash: bad, At: now}, why)
			return fmt.Errorf("%w: %s", ErrBadChunk, why)
		}
		if errors.Is(err, store.ErrWriteFailed) {
			s.storeStateLocked(err) // the store logs it, once
			return nil
		}
		s.log.Warn("store chunk", "chunk", i, "err", err)
		return nil
	}
	p.down.Add(now, int64(size))
	s.trust.Record(p.id, policy.Delivered, int64(size))
	s.fromPeers.Add(int64(size))
	s.receivedLocked(i, p.key, now)
	s.topUpLocked(p, now)
	return nil
}

// usefulLocked counts the chunks in bits that we lack and want.
func (s *Session) usefulLocked(bits *wire.Bitfield) int {
	u := 0
	for i := range s.c.Len() {
		if bits.Has(i) && !s.picker.Has(i) && s.picker.Wanted(i) {
			u++
		}
	}
	return u
}
