package swarm

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
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

// peer is one connection in a session. A reader goroutine handles what the
// peer sends; a writer goroutine sends control messages first, then serves
// the peer's requests one chunk at a time under the upload cap.
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

	qmu    sync.Mutex
	ctrl   []wire.Message // guarded by qmu
	serves []wire.Request // guarded by qmu
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

// send queues a control message.
func (p *peer) send(m wire.Message) {
	p.qmu.Lock()
	p.ctrl = append(p.ctrl, m)
	p.qmu.Unlock()
	p.signal()
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

func (p *peer) pop() (ctrl []wire.Message, serve *wire.Request) {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	ctrl, p.ctrl = p.ctrl, nil
	if len(ctrl) == 0 && len(p.serves) > 0 {
		r := p.serves[0]
		p.serves = p.serves[1:]
		serve = &r
	}
	return ctrl, serve
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
		for {
			ctrl, serve := p.pop()
			if len(ctrl) == 0 && serve == nil {
				break
			}
			for _, m := range ctrl {
				if err := wire.WriteMessage(p.st, m); err != nil {
					p.close(fmt.Errorf("write: %w", err))
					return
				}
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
		if p.bits.Set(i) {
			s.picker.Availability().AddHave(i)
			if !s.picker.Has(i) && s.picker.Wanted(i) {
				p.useful++
				s.updateInterestLocked(p)
				s.topUpLocked(p, now)
			}
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
			p.send(&wire.Reject{Index: m.Index, Offset: m.Offset, Length: m.Length, Reason: wire.ReasonChoked})
		case !s.picker.Has(i):
			p.send(&wire.Reject{Index: m.Index, Offset: m.Offset, Length: m.Length, Reason: wire.ReasonNotHave})
		case !p.enqueueServe(*m):
			p.send(&wire.Reject{Index: m.Index, Offset: m.Offset, Length: m.Length, Reason: wire.ReasonBusy})
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
