package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/manifest"
)

// Following a channel costs origin polls and segment fetches, and any web
// page can name a channel, so the gateway bounds what it does on behalf of
// a request. A channel is followed only once the origin has shown an update
// signed by the trusted key; a channel it lacks (404) or that another key
// signed (403) is answered so and remembered for liveMissingFor, at most
// liveMissingMax of them, so a flood of made-up IDs costs the origin one
// request each and starts nothing. At most PeerConfig.LiveChannels are
// followed at once. A channel nobody has asked for during its idle time
// (PeerConfig.LiveIdle, at least liveIdleTargets target durations, since a
// player reloads its playlist every target duration) is dropped: its
// follower stops polling and the peer leaves its segments' swarms.

// Defaults of PeerConfig.LiveChannels and PeerConfig.LiveIdle.
const (
	DefaultLiveChannels = 32
	DefaultLiveIdle     = 30 * time.Second
)

// liveIdleTargets is the least idle time, in target durations.
const liveIdleTargets = 2

// liveMissingFor is how long a channel the origin does not have (or that
// is not signed by the trusted key) is answered from memory.
const liveMissingFor = 10 * time.Second

// liveMissingMax bounds the channels remembered as missing.
const liveMissingMax = 1024

// The first poll of a channel, which a viewer waits for, is retried when
// the origin is unreachable or failing (5xx): liveFirstPollAttempts tries
// in all, the delay doubling from liveFirstPollBackoff, with jitter.
const (
	liveFirstPollAttempts = 3
	liveFirstPollBackoff  = 200 * time.Millisecond
)

// liveChannels is the gateway's set of followed channels.
type liveChannels struct {
	p     *Peer
	clock core.Clock
	max   int
	idle  time.Duration

	mu          sync.Mutex
	chans       map[manifest.ChannelID]*liveChannel // guarded by mu
	missing     map[manifest.ChannelID]liveMissing  // guarded by mu: refused channels, until they expire
	gossip      *live.Gossip                        // guarded by mu; nil without libp2p
	gossipTried bool                                // guarded by mu
}

// liveMissing is a refused channel, remembered.
type liveMissing struct {
	until time.Time
	code  int
	err   error
}

// liveChannel is one followed channel.
type liveChannel struct {
	id     manifest.ChannelID
	f      *live.Follower
	ctx    context.Context // the follower's and gossip's; ends when the channel is dropped
	cancel context.CancelFunc
	ready  chan struct{} // closed once the first poll is done
	code   int           // set before ready closes: the HTTP status of a failed first poll
	err    error         // set before ready closes: why the first poll failed

	users int       // guarded by liveChannels.mu: requests in progress
	last  time.Time // guarded by liveChannels.mu: when the last request ended (or began)

	mu      sync.Mutex
	seq     uint64                       // guarded by mu: newest update applied to held
	held    map[core.ContentID]bool      // guarded by mu: segment swarms joined for the window
	due     map[core.ContentID]time.Time // guarded by mu: when requests for a live-edge segment stop waiting for the swarm
	busy    map[core.ContentID]int       // guarded by mu: segment requests in progress
	dropped bool                         // guarded by mu: no longer followed; apply does nothing
	// served counts segments served; the first policy.StartupSegments
	// come straight from the origin so start-up never waits on the swarm
	// (policy.LiveRequest).
	served atomic.Int64
}

func newLiveChannels(p *Peer) *liveChannels {
	lc := &liveChannels{
		p: p, clock: core.RealClock{}, max: p.cfg.LiveChannels, idle: p.cfg.LiveIdle,
		chans: map[manifest.ChannelID]*liveChannel{}, missing: map[manifest.ChannelID]liveMissing{},
	}
	if lc.max <= 0 {
		lc.max = DefaultLiveChannels
	}
	if lc.idle <= 0 {
		lc.idle = DefaultLiveIdle
	}
	return lc
}

// channel returns the followed channel named by the printed ID s, starting
// to follow it on first use, and waits for its first update. The caller
// must call release once done with the channel (the request is over): until
// then the channel counts as watched.
func (lc *liveChannels) channel(ctx context.Context, s string) (ch *liveChannel, u *manifest.ChannelUpdate, release func(), code int, err error) {
	id, err := manifest.ParseChannelID(s)
	if err != nil {
		return nil, nil, nil, http.StatusBadRequest, err
	}
	if err := lc.p.revs.channelRevoked(id); err != nil {
		return nil, nil, nil, http.StatusGone, err
	}
	ch, code, err = lc.acquire(id)
	if err != nil {
		return nil, nil, nil, code, err
	}
	release = func() { lc.release(ch) }
	select {
	case <-ch.ready:
	case <-ctx.Done():
		release()
		return nil, nil, nil, http.StatusGatewayTimeout, fmt.Errorf("live channel %s: %w", id, ctx.Err())
	}
	if ch.err != nil {
		release()
		return nil, nil, nil, ch.code, ch.err
	}
	u, _ = ch.f.Latest()
	return ch, u, release, 0, nil
}

// acquire counts a request on channel id, starting to follow it if it is
// not followed yet.
func (lc *liveChannels) acquire(id manifest.ChannelID) (*liveChannel, int, error) {
	now := lc.clock.Now()
	lc.mu.Lock()
	if m, ok := lc.missing[id]; ok {
		if now.Before(m.until) {
			lc.mu.Unlock()
			return nil, m.code, m.err
		}
		delete(lc.missing, id)
	}
	ch := lc.chans[id]
	var evicted *liveChannel
	if ch == nil {
		if len(lc.chans) >= lc.max {
			if evicted = lc.evictLocked(); evicted == nil {
				lc.mu.Unlock()
				return nil, http.StatusServiceUnavailable, fmt.Errorf("live channel %s: already following %d channels, all being watched (raise --live-channels)", id, lc.max)
			}
		}
		ch = lc.startLocked(id)
		if ch == nil {
			lc.mu.Unlock()
			return nil, http.StatusServiceUnavailable, fmt.Errorf("live channel %s: the peer is shutting down", id)
		}
	}
	ch.users++
	ch.last = now
	lc.mu.Unlock()
	if evicted != nil {
		lc.drop(evicted)
	}
	return ch, 0, nil
}

// release ends a request on ch.
func (lc *liveChannels) release(ch *liveChannel) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	ch.users--
	ch.last = lc.clock.Now()
}

// liveEvictIdle is the least time without requests after which a followed
// channel (never less than two of its target durations) may be dropped to
// make room for another: a player asks at least once per target duration,
// so a channel being watched is never taken for an idle one, and requests
// for made-up IDs cannot push real channels out.
const liveEvictIdle = 10 * time.Second

// evictLocked removes and returns the channel unwatched for longest, or nil
// when every channel is being watched (a request in progress, or one within
// liveEvictIdle). The caller drops it.
func (lc *liveChannels) evictLocked() *liveChannel {
	now := lc.clock.Now()
	var victim *liveChannel
	for _, ch := range lc.chans {
		idle := liveEvictIdle
		if u, _ := ch.f.Latest(); u != nil {
			idle = max(idle, 2*time.Duration(u.TargetDuration)*time.Second)
		}
		if ch.users == 0 && now.Sub(ch.last) >= idle && (victim == nil || ch.last.Before(victim.last)) {
			victim = ch
		}
	}
	if victim != nil {
		delete(lc.chans, victim.id)
	}
	return victim
}

// startLocked adds channel id and starts following it (follow), or returns
// nil when the peer is closing.
func (lc *liveChannels) startLocked(id manifest.ChannelID) *liveChannel {
	p := lc.p
	ctx, cancel := context.WithCancel(p.bg) // Close ends it: its gossip goroutines are waited for
	ch := &liveChannel{
		id: id, ctx: ctx, cancel: cancel, ready: make(chan struct{}),
		held: map[core.ContentID]bool{}, due: map[core.ContentID]time.Time{}, busy: map[core.ContentID]int{},
	}
	ch.f = live.NewFollower(live.FollowerConfig{Channel: id, Trust: p.cfg.Trust, Origin: p.origin, Logger: p.log})
	ch.f.OnUpdate(func(u *manifest.ChannelUpdate, _ []byte) { lc.apply(ch, u) })
	if !p.goOwned(func() { lc.follow(ch) }) {
		cancel()
		return nil
	}
	lc.chans[id] = ch
	return ch
}

// follow polls the origin for ch's first update and, if there is one,
// follows the channel (origin polls and gossip) until it is idle or the
// peer stops. Without one, the channel is forgotten and, when the origin
// said it has no such channel or it is not signed by the trusted key,
// remembered as missing for a while.
func (lc *liveChannels) follow(ch *liveChannel) {
	err := ch.f.Poll(ch.ctx)
	// A poll makes one attempt (the next poll is its retry), but a viewer
	// is waiting for this one: retry what may pass, backing off.
	for attempt := 1; attempt < liveFirstPollAttempts && errors.Is(err, cdn.ErrUnreachable) && ch.ctx.Err() == nil; attempt++ {
		d := liveFirstPollBackoff << (attempt - 1)
		t := time.NewTimer(d + rand.N(d/2))
		select {
		case <-ch.ctx.Done():
		case <-t.C:
			err = ch.f.Poll(ch.ctx)
		}
		t.Stop()
	}
	if u, _ := ch.f.Latest(); u == nil {
		ch.code = http.StatusBadGateway
		switch {
		case errors.Is(err, cdn.ErrNotFound):
			ch.code = http.StatusNotFound
		case errors.Is(err, manifest.ErrUntrusted), errors.Is(err, manifest.ErrBadSignature):
			ch.code = http.StatusForbidden
		case err == nil:
			err = errors.New("no update")
		}
		ch.err = fmt.Errorf("live channel %s: %w", ch.id, err)
		lc.mu.Lock()
		if lc.chans[ch.id] == ch {
			delete(lc.chans, ch.id)
		}
		if ch.code != http.StatusBadGateway { // a transient failure is not remembered
			lc.rememberLocked(ch.id, liveMissing{until: lc.clock.Now().Add(liveMissingFor), code: ch.code, err: ch.err})
		}
		lc.mu.Unlock()
		ch.cancel()
		close(ch.ready)
		return
	}
	close(ch.ready)
	lc.mu.Lock()
	g := lc.gossipLocked()
	lc.mu.Unlock()
	if g != nil {
		if err := g.Follow(ch.ctx, ch.f); err != nil {
			lc.p.log.Warn("live: no gossip for channel", "channel", ch.id.Short(), "err", err)
		}
	}
	done := make(chan struct{})
	if !lc.p.goOwned(func() { defer close(done); ch.f.Run(ch.ctx) }) {
		close(done)
	}
	check := time.NewTicker(max(lc.idle/4, 10*time.Millisecond))
	defer check.Stop()
	for {
		select {
		case <-ch.ctx.Done(): // dropped, or the peer is stopping
			<-done
			return
		case <-check.C:
			if lc.dropIfIdle(ch) {
				<-done
				return
			}
		}
	}
}

// rememberLocked records a refused channel, forgetting expired ones (and,
// if all are current, an arbitrary one) to stay within liveMissingMax.
func (lc *liveChannels) rememberLocked(id manifest.ChannelID, m liveMissing) {
	if len(lc.missing) >= liveMissingMax {
		now := lc.clock.Now()
		for k, v := range lc.missing {
			if !now.Before(v.until) {
				delete(lc.missing, k)
			}
		}
		for k := range lc.missing {
			if len(lc.missing) < liveMissingMax {
				break
			}
			delete(lc.missing, k)
		}
	}
	lc.missing[id] = m
}

// idleFor is how long ch is followed after its last request.
func (lc *liveChannels) idleFor(ch *liveChannel) time.Duration {
	idle := lc.idle
	if u, _ := ch.f.Latest(); u != nil {
		idle = max(idle, liveIdleTargets*time.Duration(u.TargetDuration)*time.Second)
	}
	return idle
}

// dropIfIdle drops ch if nobody has asked for it for its idle time.
func (lc *liveChannels) dropIfIdle(ch *liveChannel) bool {
	idle := lc.idleFor(ch)
	lc.mu.Lock()
	if ch.users > 0 || lc.clock.Now().Sub(ch.last) < idle || lc.chans[ch.id] != ch {
		lc.mu.Unlock()
		return false
	}
	delete(lc.chans, ch.id)
	lc.mu.Unlock()
	lc.p.log.Debug("live: channel idle, no longer followed", "channel", ch.id.Short(), "idle", idle)
	lc.drop(ch)
	return true
}

// drop stops following ch, already removed from lc.chans: no more polls or
// gossip, and the peer leaves its segments' swarms.
func (lc *liveChannels) drop(ch *liveChannel) {
	ch.cancel()
	ch.mu.Lock()
	ch.dropped = true
	held := ch.held
	ch.held, ch.due = map[core.ContentID]bool{}, map[core.ContentID]time.Time{}
	ch.mu.Unlock()
	for id := range held {
		lc.p.segChan.Delete(id)
		lc.p.Leave(id)
	}
}

// LiveChannelStatus is one followed live channel in /api/status.
type LiveChannelStatus struct {
	Channel  string `json:"channel"`
	Seq      uint64 `json:"seq"`      // newest update held
	Segments int    `json:"segments"` // segment swarms held for its window
	Viewers  int    `json:"viewers"`  // requests in progress
	Polls    int64  `json:"polls"`    // origin requests for its updates
}

// status lists the followed channels (those still on their first poll
// included).
func (lc *liveChannels) status() []LiveChannelStatus {
	lc.mu.Lock()
	chans := make([]*liveChannel, 0, len(lc.chans))
	users := make([]int, 0, len(lc.chans))
	for _, ch := range lc.chans {
		chans = append(chans, ch)
		users = append(users, ch.users)
	}
	lc.mu.Unlock()
	out := []LiveChannelStatus{}
	for i, ch := range chans {
		ch.mu.Lock()
		st := LiveChannelStatus{Channel: ch.id.String(), Seq: ch.seq, Segments: len(ch.held), Viewers: users[i], Polls: ch.f.Polls()}
		ch.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// count is the number of followed channels.
func (lc *liveChannels) count() int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return len(lc.chans)
}

// gossipLocked starts GossipSub on first use when the host is libp2p.
func (lc *liveChannels) gossipLocked() *live.Gossip {
	if !lc.gossipTried {
		lc.gossipTried = true
		lc.gossip = lc.p.gossip()
	}
	return lc.gossip
}
