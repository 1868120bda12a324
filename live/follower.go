package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media"
)

// Getter reads one layout file of at most limit bytes; *cdn.Client is one.
type Getter interface {
	Get(ctx context.Context, path string, limit int64) ([]byte, error)
}

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	Channel manifest.ChannelID
	Trust   manifest.PublicKey // updates must be signed by this key
	Origin  Getter             // where LatestPath is polled; nil: only Offer (gossip) feeds it
	Poll    time.Duration      // origin poll interval; default DefaultPoll
	Logger  *slog.Logger
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
}

// NewFollower returns a follower with no update yet.
func NewFollower(cfg FollowerConfig) *Follower {
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
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

// Poll fetches the origin's latest update once and offers it. A stale
// update is not an error here.
func (f *Follower) Poll(ctx context.Context) error {
	if f.cfg.Origin == nil {
		return fmt.Errorf("%w: follower has no origin to poll", ErrConfig)
	}
	b, err := f.cfg.Origin.Get(ctx, LatestPath(f.cfg.Channel), manifest.MaxChannelUpdateSize)
	if err != nil {
		return fmt.Errorf("channel %s: %w", f.cfg.Channel, err)
	}
	if _, err := f.Offer(b); err != nil && !errors.Is(err, manifest.ErrStaleUpdate) {
		return fmt.Errorf("channel %s from the origin: %w", f.cfg.Channel, err)
	}
	return nil
}

// Run polls the origin every Poll until ctx ends or the channel ends.
func (f *Follower) Run(ctx context.Context) error {
	t := time.NewTicker(f.cfg.Poll)
	defer t.Stop()
	for {
		if err := f.Poll(ctx); err != nil && ctx.Err() == nil {
			f.cfg.Logger.Debug("live: poll", "err", err)
		}
		if u, _ := f.Latest(); u != nil && u.Ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
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
