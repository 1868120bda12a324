package live

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media"
	"github.com/shoal-cdn/shoal/publish"
)

// Defaults of PublisherConfig.
const (
	DefaultWindow   = 6
	DefaultPoll     = 250 * time.Millisecond
	DefaultPlaylist = "index.m3u8"
	// keepUpdates is how many numbered update files stay in the layout
	// besides latest; older ones are removed so a long stream does not fill
	// the directory.
	keepUpdates = 64
)

// Errors of the publisher.
var (
	// ErrConfig is a bad PublisherConfig or FollowerConfig.
	ErrConfig = errors.New("live: bad config")
	// ErrPlaylist means the watched playlist cannot be read or parsed yet;
	// the publisher retries at the next poll.
	ErrPlaylist = errors.New("live: watched playlist unusable")
	// ErrUnsupported is an HLS feature live channels do not carry yet.
	ErrUnsupported = errors.New("live: unsupported playlist feature")
)

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	Key       ed25519.PrivateKey // publisher signing key
	Channel   string             // channel name; with the key it makes the channel ID
	Watch     string             // directory the encoder writes into
	Playlist  string             // media playlist name in Watch; default DefaultPlaylist
	Out       string             // origin layout directory
	Window    int                // segments per update; default DefaultWindow
	ChunkSize int64              // 0: core.DefaultChunkSize
	Poll      time.Duration      // playlist poll interval; default DefaultPoll
	Clock     core.Clock         // stamps updates; default core.RealClock
	Logger    *slog.Logger
}

// Publisher turns a growing HLS output into a live channel.
type Publisher struct {
	cfg PublisherConfig
	id  manifest.ChannelID

	// Run's state; Step is not safe for concurrent use.
	seq     uint64                    // last update number written
	window  []manifest.ChannelSegment // current window, oldest first
	target  int64                     // target duration of the last update
	ended   bool                      // the last update was the final one
	written []uint64                  // numbered update files in Out, oldest first
}

// NewPublisher checks cfg and resumes numbering after the channel's latest
// update in Out, if there is one, so a restarted publisher never reuses a
// sequence number.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: no publisher key", ErrConfig)
	}
	if cfg.Channel == "" || len(cfg.Channel) > manifest.MaxChannelNameLen {
		return nil, fmt.Errorf("%w: channel name must be 1 to %d bytes", ErrConfig, manifest.MaxChannelNameLen)
	}
	if cfg.Watch == "" || cfg.Out == "" {
		return nil, fmt.Errorf("%w: both a watch directory and an output directory are needed", ErrConfig)
	}
	if cfg.Playlist == "" {
		cfg.Playlist = DefaultPlaylist
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Window < 1 || cfg.Window > manifest.MaxChannelSegments {
		return nil, fmt.Errorf("%w: window %d: want 1 to %d segments", ErrConfig, cfg.Window, manifest.MaxChannelSegments)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Clock == nil {
		cfg.Clock = core.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pub := manifest.PublicOf(cfg.Key)
	p := &Publisher{cfg: cfg, id: manifest.ChannelIDOf(pub, cfg.Channel)}
	if err := os.MkdirAll(p.file(ChannelDir+"/"+p.id.String()), 0o755); err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	if b, err := os.ReadFile(p.file(LatestPath(p.id))); err == nil {
		if u, err := manifest.DecodeChannelUpdate(b, pub); err == nil {
			p.seq = u.Seq
		}
	}
	return p, nil
}

// ID is the channel ID receivers follow.
func (p *Publisher) ID() manifest.ChannelID { return p.id }

func (p *Publisher) file(slash string) string {
	return filepath.Join(p.cfg.Out, filepath.FromSlash(slash))
}

// Run polls the playlist until ctx ends or the encoder ends the stream
// (EXT-X-ENDLIST), which is published as a final update. A playlist that is
// missing or unreadable is retried; a failure to write the layout ends Run.
func (p *Publisher) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Poll)
	defer t.Stop()
	for {
		if _, err := p.Step(ctx); err != nil {
			if !errors.Is(err, ErrPlaylist) || ctx.Err() != nil {
				return err
			}
			p.cfg.Logger.Debug("live: waiting for the playlist", "err", err)
		}
		if p.ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Step reads the playlist once, publishes the segments it lists that are
// newer than the window, and writes an update if anything changed. It
// returns the update written, or nil.
func (p *Publisher) Step(ctx context.Context) (*manifest.ChannelUpdate, error) {
	pl, err := p.readPlaylist()
	if err != nil {
		return nil, err
	}
	segs := pl.Segments
	// Only the newest Window segments matter: older ones would leave the
	// window at once.
	if len(segs) > p.cfg.Window {
		segs = segs[len(segs)-p.cfg.Window:]
	}
	changed := false
	for _, s := range segs {
		if s.Seq < 0 || (len(p.window) > 0 && uint64(s.Seq) <= p.window[len(p.window)-1].Seq) {
			continue
		}
		if len(p.window) > 0 && uint64(s.Seq) != p.window[len(p.window)-1].Seq+1 {
			// The encoder skipped ahead (or restarted with a higher
			// sequence): start a fresh window so it stays consecutive.
			p.window = nil
		}
		cs, err := p.publishSegment(ctx, s)
		if err != nil {
			return nil, err
		}
		p.window = append(p.window, cs)
		if len(p.window) > p.cfg.Window {
			p.window = p.window[len(p.window)-p.cfg.Window:]
		}
		changed = true
	}
	if pl.TargetDuration != p.target {
		p.target, changed = pl.TargetDuration, true
	}
	if pl.Ended && !p.ended {
		p.ended, changed = true, true
	}
	if !changed || len(p.window) == 0 {
		return nil, nil
	}
	return p.writeUpdate()
}

func (p *Publisher) readPlaylist() (*media.MediaPlaylist, error) {
	name := filepath.Join(p.cfg.Watch, p.cfg.Playlist)
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPlaylist, err)
	}
	if media.IsMaster(b) {
		return nil, fmt.Errorf("%w: %s is a master playlist; watch one media playlist", ErrUnsupported, name)
	}
	pl, err := media.ParseMediaPlaylist(name, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPlaylist, err)
	}
	for _, s := range pl.Segments {
		if s.Init != "" {
			return nil, fmt.Errorf("%w: %s: fMP4 segments (EXT-X-MAP); use MPEG-TS segments", ErrUnsupported, name)
		}
		if strings.Contains(s.URI, "://") || strings.HasPrefix(s.URI, "/") {
			return nil, fmt.Errorf("%w: %s: segment URI %q is not relative", ErrUnsupported, name, s.URI)
		}
	}
	return pl, nil
}

// publishSegment publishes one segment as a single-file content, so peers
// fetch, verify and swarm it like any other content.
func (p *Publisher) publishSegment(ctx context.Context, s media.Segment) (manifest.ChannelSegment, error) {
	src := filepath.Join(p.cfg.Watch, filepath.FromSlash(s.URI))
	res, err := publish.Publish(ctx, publish.Config{
		Key:       p.cfg.Key,
		Out:       p.cfg.Out,
		ChunkSize: p.cfg.ChunkSize,
		Name:      p.cfg.Channel + "/" + path.Base(s.URI),
		Paths:     []string{src},
		Created:   p.cfg.Clock.Now(),
		Workers:   1,
	})
	if err != nil {
		return manifest.ChannelSegment{}, fmt.Errorf("live: segment %d (%s): %w", s.Seq, s.URI, err)
	}
	cs := manifest.ChannelSegment{
		Seq:        uint64(s.Seq),
		Name:       path.Base(s.URI),
		DurationMs: max(1, s.Duration.Milliseconds()),
		Size:       res.Bytes,
		Content:    res.ID,
	}
	p.cfg.Logger.Info("live: segment published", "channel", p.id.Short(), "seq", cs.Seq, "name", cs.Name, "bytes", cs.Size, "content", res.ID)
	return cs, nil
}

// writeUpdate signs the window and writes it as update number seq and as
// latest. Numbers follow the clock in milliseconds when that is higher, so
// they keep increasing across restarts even if latest was lost.
func (p *Publisher) writeUpdate() (*manifest.ChannelUpdate, error) {
	now := p.cfg.Clock.Now().UTC().Truncate(time.Millisecond)
	p.seq = max(p.seq+1, uint64(max(now.UnixMilli(), 0)))
	u := &manifest.ChannelUpdate{
		Channel:        p.cfg.Channel,
		Seq:            p.seq,
		Created:        now,
		TargetDuration: max(p.target, 1),
		MediaSequence:  p.window[0].Seq,
		Segments:       append([]manifest.ChannelSegment(nil), p.window...),
		Ended:          p.ended,
	}
	if err := u.Sign(p.cfg.Key); err != nil {
		return nil, fmt.Errorf("live: sign update %d: %w", u.Seq, err)
	}
	b, err := u.Encode()
	if err != nil {
		return nil, err
	}
	if err := writeSynced(p.file(UpdatePath(p.id, u.Seq)), b); err != nil {
		return nil, err
	}
	if err := writeSynced(p.file(LatestPath(p.id)), b); err != nil {
		return nil, err
	}
	p.written = append(p.written, u.Seq)
	if len(p.written) > keepUpdates {
		os.Remove(p.file(UpdatePath(p.id, p.written[0])))
		p.written = p.written[1:]
	}
	p.cfg.Logger.Info("live: update", "channel", p.id.Short(), "seq", u.Seq, "first", u.MediaSequence, "segments", len(u.Segments), "ended", u.Ended)
	return u, nil
}

// writeSynced replaces dst atomically with data, synced before the rename so
// a crash never leaves a torn update behind for followers.
func writeSynced(dst string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return fmt.Errorf("live: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		return fmt.Errorf("live: write %s: %w", dst, err)
	}
	return nil
}
