package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media"
)

// Getter reads one layout file of at most limit bytes; *cdn.Client is one.
type Getter interface {
	Get(ctx context.Context, path string, limit int64) ([]byte, error)
}

// ConditionalGetter is an optional capability of a Getter (*cdn.Client has
// it): a GET with If-None-Match. When the file still has ETag etag it
// reports modified false and no bytes, so a poll that finds nothing new
// costs the origin, or the CDN in front of it, a 304 and no body.
type ConditionalGetter interface {
	GetIfNoneMatch(ctx context.Context, path, etag string, limit int64) (body []byte, newETag string, modified bool, err error)
}

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	Channel manifest.ChannelID
	Trust   manifest.Trust // updates must be signed by a key it trusts
	Origin  Getter         // where LatestPath is polled; nil: only Offer (gossip) feeds it
	// Poll is the least time between two origin polls by Run; 0: the
	// target duration of the newest update (the publisher writes about
	// one update per target duration, so polling faster finds nothing).
	Poll   time.Duration
	Logger *slog.Logger
}

// Follower keeps the newest valid update of one channel. It is safe for
// concurrent use.
type Follower struct {
	cfg FollowerConfig

	mu      sync.Mutex
	cur     *manifest.ChannelUpdate                 // guarded by mu: newest accepted update
	raw     []byte                                  // guarded by mu: its encoding
	changed chan struct{}                           // guarded by mu: closed and replaced on each accepted update
	subs    []func(*manifest.ChannelUpdate, []byte) // guarded by mu
	etag    string                                  // guarded by mu: the origin's ETag of an update no newer than cur
	// lag is the time from an update's signed creation to its appearance
	// on the origin (publishing, a CDN, the clocks' offset), as learnt by
	// the aligned polls (adjustLag), so polls can follow the publication
	// schedule (guarded by mu; lagSet once the first poll guessed it).
	lag    time.Duration
	lagSet bool

	polls atomic.Int64 // origin requests made by Poll
}

// NewFollower returns a follower with no update yet.
func NewFollower(cfg FollowerConfig) *Follower {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Follower{cfg: cfg, changed: make(chan struct{})}
}

// ID is the followed channel.
func (f *Follower) ID() manifest.ChannelID { return f.cfg.Channel }

// Check decodes and verifies b as an update of this channel, without
// comparing it with the one held.
func (f *Follower) Check(b []byte) (*manifest.ChannelUpdate, error) {
	u, err := manifest.DecodeChannelUpdate(b, f.cfg.Trust)
	if err != nil {
		return nil, err
	}
	if id := u.ID(); id != f.cfg.Channel {
		return nil, fmt.Errorf("%w: update of %s offered to %s", manifest.ErrWrongChannel, id, f.cfg.Channel)
	}
	return u, nil
}

// Offer accepts b if it is a valid update of this channel, signed by the
// trusted key and newer than the one held; an older or equal one fails with
// manifest.ErrStaleUpdate. Subscribers see each accepted update.
func (f *Follower) Offer(b []byte) (*manifest.ChannelUpdate, error) {
	f.mu.Lock()
	same := f.raw != nil && bytes.Equal(b, f.raw)
	f.mu.Unlock()
	if same { // the common case when polling: skip the signature check
		return nil, fmt.Errorf("%w: already held", manifest.ErrStaleUpdate)
	}
	u, err := f.Check(b)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if !manifest.Newer(f.cur, u) {
		held := f.cur.Seq
		f.mu.Unlock()
		return nil, fmt.Errorf("%w: update %d offered, %d held", manifest.ErrStaleUpdate, u.Seq, held)
	}
	f.cur, f.raw = u, bytes.Clone(b)
	close(f.changed)
	f.changed = make(chan struct{})
	subs := f.subs
	f.mu.Unlock()
	for _, fn := range subs {
		fn(u, b)
	}
	return u, nil
}

// Latest returns the newest accepted update and its encoding, or nil.
func (f *Follower) Latest() (*manifest.ChannelUpdate, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur, f.raw
}

// Changed returns a channel closed when the next update is accepted.
func (f *Follower) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// OnUpdate registers fn to be called with every accepted update. Calls may
// overlap when updates arrive from several sources at once, so fn must
// itself ignore an update older than one it has seen.
func (f *Follower) OnUpdate(fn func(u *manifest.ChannelUpdate, raw []byte)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, fn)
}

// Polls is the number of origin requests Poll has made.
func (f *Follower) Polls() int64 { return f.polls.Load() }

// Poll fetches the origin's latest update once and offers it. A stale
// update is not an error here. When the origin supports it the request is
// conditional on the ETag of the update held, so an unchanged one costs a
// 304.
func (f *Follower) Poll(ctx context.Context) error {
	if f.cfg.Origin == nil {
		return fmt.Errorf("%w: follower has no origin to poll", ErrConfig)
	}
	f.polls.Add(1)
	p := LatestPath(f.cfg.Channel)
	var b []byte
	var etag string
	var err error
	if cg, ok := f.cfg.Origin.(ConditionalGetter); ok {
		f.mu.Lock()
		held := f.etag
		f.mu.Unlock()
		var modified bool
		b, etag, modified, err = cg.GetIfNoneMatch(ctx, p, held, manifest.MaxChannelUpdateSize)
		if err == nil && !modified {
			return nil
		}
	} else {
		b, err = f.cfg.Origin.Get(ctx, p, manifest.MaxChannelUpdateSize)
	}
	if err != nil {
		return fmt.Errorf("channel %s: %w", f.cfg.Channel, err)
	}
	u, err := f.Offer(b)
	if err != nil && !errors.Is(err, manifest.ErrStaleUpdate) {
		return fmt.Errorf("channel %s from the origin: %w", f.cfg.Channel, err)
	}
	if err == nil {
		f.mu.Lock()
		if !f.lagSet && len(u.Segments) > 0 {
			// A first guess at the lag (see Run): what this poll saw,
			// but at most a tenth of a segment, since a poll at a random
			// moment sees the update up to a segment late.
			f.lag = max(min(time.Since(u.Created), u.Segments[len(u.Segments)-1].Duration()/10), 0)
			f.lagSet = true
		}
		f.mu.Unlock()
	}
	// What the origin has is no newer than what we hold: until it changes,
	// asking again need not bring the bytes.
	f.mu.Lock()
	f.etag = etag
	f.mu.Unlock()
	return nil
}

// Run polls the origin until ctx ends. A peer that found the last update
// by polling polls again one interval (Poll, or the newest update's target
// duration) plus up to half an interval of random jitter later: it is one
// of the channel's pollers. A peer that heard the last update from gossip
// (Offer) waits one and a half to two and a half intervals instead: the
// pollers find the next update within an interval of its publication and
// gossip it on, so a peer in a gossiping swarm rarely polls at all, and if
// the pollers leave, the first whose longer wait runs out becomes one. So
// the origin sees about one poll per interval per swarm, not per peer,
// and a peer never polls more than once an interval. Run keeps polling
// after a final update (EXT-X-ENDLIST): a publisher restarted on the same
// channel signs higher sequence numbers, and followers pick those up. Its
// owner ends it (ctx) when nobody watches the channel any more.
func (f *Follower) Run(ctx context.Context) error {
	if f.cfg.Origin == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTimer(f.interval(false))
	defer t.Stop()
	aligned := false
	for {
		changed := f.Changed()
		heard := false
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			heard = true // from gossip: Poll's own updates arrive below
		case <-t.C:
			_, before := f.Latest()
			err := f.Poll(ctx)
			if err != nil && ctx.Err() == nil {
				f.cfg.Logger.Debug("live: poll", "err", err)
			}
			if _, after := f.Latest(); aligned && err == nil {
				f.adjustLag(!bytes.Equal(before, after))
			}
		}
		var next time.Duration
		next, aligned = f.next(heard)
		t.Reset(next)
	}
}

// next is the wait before the next poll and whether it is aligned on the
// publication schedule. A follower that heard the last update from gossip
// waits interval(true). A poller aims just after the next update appears:
// the newest update's signed creation time plus whole segments (the
// publisher writes one update per segment) plus the learnt lag, the first
// such moment at least three quarters of an interval away (so about one
// poll per segment); without a schedule to go by, interval(false).
func (f *Follower) next(heard bool) (time.Duration, bool) {
	if heard {
		return f.interval(true), false
	}
	f.mu.Lock()
	u, lag, ok := f.cur, f.lag, f.lagSet
	f.mu.Unlock()
	if u == nil || !ok || len(u.Segments) == 0 || u.Ended {
		return f.interval(false), false
	}
	seg, base := u.Segments[len(u.Segments)-1].Duration(), f.base()
	if seg <= 0 {
		return f.interval(false), false
	}
	now := time.Now()
	at := u.Created.Add(seg + lag + rand.N(seg/10+1))
	if at.Before(now.Add(-10*time.Minute)) || at.After(now.Add(2*base+seg)) {
		return f.interval(false), false // a creation time far off: clocks disagree
	}
	// The publication is followed, not outrun: at most one poll per
	// segment, and never two within three quarters of an interval (the
	// slack lets the aim move earlier by the jitter and the lag's creep
	// without skipping an update).
	if early := now.Add(base * 3 / 4).Sub(at); early > 0 {
		at = at.Add((early + seg - 1) / seg * seg) // whole segments later
	}
	return at.Sub(now), true
}

// adjustLag tracks the lag between an update's creation and its appearance
// on the origin (publishing, a CDN, the clocks' offset): an aligned poll
// that found nothing new was early, so the lag grows by a tenth of a
// segment; one that found the update creeps a hundredth earlier, so the
// polls stay close behind the publication as it drifts.
func (f *Follower) adjustLag(found bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil || len(f.cur.Segments) == 0 {
		return
	}
	seg := f.cur.Segments[len(f.cur.Segments)-1].Duration()
	if found {
		f.lag = max(f.lag-seg/100, 0)
	} else {
		f.lag = min(f.lag+seg/10, seg)
	}
}

// base is the least time between two polls: Poll, or the newest update's
// target duration.
func (f *Follower) base() time.Duration {
	if f.cfg.Poll > 0 {
		return f.cfg.Poll
	}
	if u, _ := f.Latest(); u != nil {
		return time.Duration(u.TargetDuration) * time.Second
	}
	return time.Second
}

// interval is the time to the next poll: the base interval and up to half
// of it again, drawn at random; after an update heard from gossip, one and
// a half to two and a half base intervals.
func (f *Follower) interval(heard bool) time.Duration {
	base := f.base()
	if heard {
		return base + base/2 + rand.N(base+1)
	}
	return base + rand.N(base/2+1)
}

// Playlist renders u as a live HLS media playlist whose segment URIs are
// prefix followed by each segment's name.
func Playlist(u *manifest.ChannelUpdate, prefix string) ([]byte, error) {
	pl := &media.MediaPlaylist{
		Version:        3,
		TargetDuration: u.TargetDuration,
		MediaSequence:  int64(u.MediaSequence),
		Ended:          u.Ended,
	}
	for _, s := range u.Segments {
		pl.Segments = append(pl.Segments, media.Segment{URI: prefix + s.Name, Duration: s.Duration(), Seq: int64(s.Seq)})
	}
	return pl.Encode()
}
