package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// Defaults of `shoal bench stream`: the reference live stream.
const (
	DefaultStreamViewers  = 30
	DefaultStreamBitrate  = 4e6 / 8 // 4 Mbit/s
	DefaultStreamSegment  = 2 * time.Second
	DefaultStreamDuration = 60 * time.Second
	DefaultStreamPeerUp   = 8e6 / 8  // 8 Mbit/s
	DefaultStreamPeerDown = 50e6 / 8 // 50 Mbit/s
	DefaultStreamSpread   = 10 * time.Second
	// DefaultStreamChunk is smaller than core.DefaultChunkSize: a 2 s
	// segment at 4 Mbit/s is 1 MB, and more chunks per segment let peers
	// relay the first chunks while the rest still arrive.
	DefaultStreamChunk = 64 << 10
	// streamWindow is the segments in a live playlist (and update).
	streamWindow = 6
	// liveStartBehind is how many segments behind the live edge a viewer
	// starts, as HLS players do (at least three target durations).
	liveStartBehind = 3
)

// Stream modes.
const (
	ModeLive = "live"
	ModeVOD  = "vod"
)

// StreamConfig describes one stream benchmark. Rates are bytes/s; 0 means
// unlimited.
type StreamConfig struct {
	Viewers  int
	Bitrate  float64       // stream bytes/s
	Segment  time.Duration // segment duration
	Duration time.Duration // media each viewer watches
	Mode     string        // ModeLive (default) or ModeVOD
	PeerUp   float64       // u_i of each viewer's peer
	PeerDown float64       // d_i: each viewer's download, peers and origin (P2P) or origin (CDN) together
	OriginUp float64       // the origin's (CDN's) upload cap
	// JoinSpread spreads the viewers' arrivals evenly over this long.
	JoinSpread time.Duration
	// Churn is the fraction of viewers that leave once mid-stream (after
	// 30 to 70% of their segments) and rejoin a segment duration later with
	// a fresh peer and player, for the rest.
	Churn float64
	// StartThreshold is the media a player buffers before it starts
	// (default 2 segments).
	StartThreshold time.Duration
	ChunkSize      int64 // default DefaultStreamChunk
	Seed           uint64
	// SkipCDN / SkipP2P leave out one of the two runs.
	SkipCDN, SkipP2P bool
	Dir              string // temporary files go under it; "" is os.TempDir
	Progress         func(string)
	Logger           *slog.Logger
}

func (c *StreamConfig) fill() error {
	if c.Viewers < 1 {
		return fmt.Errorf("%w: viewers %d: want at least 1", ErrConfig, c.Viewers)
	}
	if c.Bitrate <= 0 || c.Segment < 100*time.Millisecond || c.Duration < c.Segment {
		return fmt.Errorf("%w: want a positive bitrate, segments of at least 100ms and a duration of at least one segment", ErrConfig)
	}
	if c.PeerUp < 0 || c.PeerDown < 0 || c.OriginUp < 0 || c.JoinSpread < 0 || c.StartThreshold < 0 {
		return fmt.Errorf("%w: rates, spread and threshold must not be negative", ErrConfig)
	}
	if c.Churn < 0 || c.Churn > 1 || math.IsNaN(c.Churn) {
		return fmt.Errorf("%w: churn %v: want a fraction in [0, 1]", ErrConfig, c.Churn)
	}
	switch c.Mode {
	case "":
		c.Mode = ModeLive
	case ModeLive, ModeVOD:
	default:
		return fmt.Errorf("%w: mode %q: want %s or %s", ErrConfig, c.Mode, ModeLive, ModeVOD)
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultStreamChunk
	}
	if err := core.CheckChunkSize(c.ChunkSize); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.StartThreshold == 0 {
		c.StartThreshold = 2 * c.Segment
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	return nil
}

// segmentBytes is the size of every synthetic segment.
func (c *StreamConfig) segmentBytes() int64 {
	return max(1, int64(c.Bitrate*c.Segment.Seconds()))
}

// segmentsWatched is the media segments each viewer session downloads.
func (c *StreamConfig) segmentsWatched() int {
	return int((c.Duration + c.Segment - 1) / c.Segment)
}

// Session is one viewer's playback from join to leave; a churned viewer
// has two.
type Session struct {
	Viewer    int
	Joined    time.Duration // since the run's start
	Startup   time.Duration // join to first frame
	Played    time.Duration // media played
	PlayWall  time.Duration
	StallWall time.Duration
	Stalls    int
	Bytes     int64 // media and playlist bytes the player received
	Err       string
}

// StreamRun is one of the two runs (P2P or CDN-only).
type StreamRun struct {
	Name          string // "p2p" or "cdn"
	Sessions      []Session
	Failed        int // sessions that ended in an error
	StartupP50    time.Duration
	StartupP95    time.Duration
	RebufferRatio float64 // Σ stall / Σ (play + stall)
	StallsPerHour float64 // Σ stalls / Σ hours of media played
	PlayerBytes   int64   // what the players received
	OriginBytes   int64   // origin egress during the run
	// Offload is 1 − origin egress / bytes the players received: the share
	// of viewers' bytes the origin did not have to send.
	Offload float64
	// FromPeers and FromOrigin are what the viewers' peers received (P2P).
	FromPeers, FromOrigin int64
	Wall                  time.Duration
}

// StreamResult holds both runs of one benchmark.
type StreamResult struct {
	Config StreamConfig
	P2P    *StreamRun // nil when skipped
	CDN    *StreamRun // nil when skipped
	// StreamBytes is one viewer's media: bitrate × duration.
	StreamBytes int64
}

// RunStream runs the P2P run and then the CDN-only baseline (one after the
// other, so they do not compete for the machine) and returns both.
func RunStream(ctx context.Context, cfg StreamConfig) (*StreamResult, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.Dir, "shoal-stream-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	res := &StreamResult{Config: cfg, StreamBytes: int64(cfg.segmentsWatched()) * cfg.segmentBytes()}
	if !cfg.SkipP2P {
		if res.P2P, err = runStreamP2P(ctx, cfg, dir); err != nil {
			return res, err
		}
	}
	if !cfg.SkipCDN {
		if res.CDN, err = runStreamCDN(ctx, cfg, dir); err != nil {
			return res, err
		}
	}
	return res, nil
}

// summarize fills a run's aggregates from its sessions.
func (r *StreamRun) summarize(originBytes int64) {
	var startups []time.Duration
	var play, stall, played time.Duration
	stalls := 0
	for _, s := range r.Sessions {
		r.PlayerBytes += s.Bytes
		if s.Err != "" {
			r.Failed++
			continue
		}
		startups = append(startups, s.Startup)
		play += s.PlayWall
		stall += s.StallWall
		played += s.Played
		stalls += s.Stalls
	}
	slices.Sort(startups)
	r.StartupP50 = percentile(startups, 0.50)
	r.StartupP95 = percentile(startups, 0.95)
	if play+stall > 0 {
		r.RebufferRatio = float64(stall) / float64(play+stall)
	}
	if played > 0 {
		r.StallsPerHour = float64(stalls) / played.Hours()
	}
	r.OriginBytes = originBytes
	if r.PlayerBytes > 0 {
		r.Offload = min(1, max(0, 1-float64(originBytes)/float64(r.PlayerBytes)))
	}
}

// percentile is the nearest-rank percentile of sorted d (0 if empty).
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	k := int(math.Ceil(p*float64(len(d)))) - 1
	return d[min(max(k, 0), len(d)-1)]
}
