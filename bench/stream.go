package bench

import (
	"cmp"
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
	// The VOD of --mode vod: the 30-minute title, each viewer
	// watching a window of one to five minutes of it.
	DefaultVODLength = 30 * time.Minute
	DefaultWatchMin  = time.Minute
	DefaultWatchMax  = 5 * time.Minute
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
	Bitrate  float64       // stream bytes/s (VOD: the top rendition's)
	Segment  time.Duration // segment duration
	Duration time.Duration // media each viewer watches (live)
	Mode     string        // ModeLive (default) or ModeVOD
	// VODLength is the VOD's media (default DefaultVODLength). Each viewer
	// watches a window of it: a start segment drawn uniformly, and a length
	// drawn uniformly from [WatchMin, WatchMax] (defaults DefaultWatchMin,
	// DefaultWatchMax), cut short at the end of the VOD.
	VODLength          time.Duration
	WatchMin, WatchMax time.Duration
	PeerUp             float64 // u_i of each viewer's peer
	PeerDown           float64 // d_i: each viewer's download, peers and origin (P2P) or origin (CDN) together
	OriginUp           float64 // the origin's (CDN's) upload cap
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
	// Transport is the viewers' peers' network: TransportMem (default), an
	// in-memory network, or TransportLibp2p, real libp2p hosts on loopback
	// (TCP), which also carry GossipSub: live channel updates spread
	// between peers instead of each peer polling the origin.
	Transport string
	// SkipCDN / SkipP2P leave out one of the two runs.
	SkipCDN, SkipP2P bool
	// CohortSplit, when in (0, 100), makes the P2P run an A/B run: an
	// operator policy on the tracker puts that percent of the viewers'
	// peers in a P2P cohort and turns P2P off for the rest (stream_ab.go),
	// and the report splits the run by cohort, from the players' figures
	// and from the tracker's fleet telemetry.
	CohortSplit float64
	// Hold keeps the P2P run's tracker (its /dashboard/ and /api/fleet)
	// serving this long after the run, for a look at the fleet dashboard;
	// OnTracker, when set, is told its URL when it starts.
	Hold      time.Duration
	OnTracker func(url string)
	Dir       string // temporary files go under it; "" is os.TempDir
	Progress  func(string)
	Logger    *slog.Logger
}

// Transports of the viewers' peers.
const (
	TransportMem    = "mem"
	TransportLibp2p = "libp2p"
)

func (c *StreamConfig) fill() error {
	if c.CohortSplit != 0 && !(c.CohortSplit > 0 && c.CohortSplit < 100) {
		return fmt.Errorf("%w: cohort split %v%%: want more than 0 and less than 100 (0: no A/B run)", ErrConfig, c.CohortSplit)
	}
	if c.Hold < 0 {
		return fmt.Errorf("%w: hold %v: want 0 or more", ErrConfig, c.Hold)
	}
	switch c.Transport {
	case "":
		c.Transport = TransportMem
	case TransportMem, TransportLibp2p:
	default:
		return fmt.Errorf("%w: transport %q: want mem or libp2p", ErrConfig, c.Transport)
	}
	if c.Viewers < 1 {
		return fmt.Errorf("%w: viewers %d: want at least 1", ErrConfig, c.Viewers)
	}
	if c.Bitrate <= 0 || c.Segment < 100*time.Millisecond {
		return fmt.Errorf("%w: want a positive bitrate and segments of at least 100ms", ErrConfig)
	}
	if c.PeerUp < 0 || c.PeerDown < 0 || c.OriginUp < 0 || c.JoinSpread < 0 || c.StartThreshold < 0 {
		return fmt.Errorf("%w: rates, spread and threshold must not be negative", ErrConfig)
	}
	if c.Churn < 0 || c.Churn > 1 || math.IsNaN(c.Churn) {
		return fmt.Errorf("%w: churn %v: want a fraction in [0, 1]", ErrConfig, c.Churn)
	}
	switch c.Mode {
	case "", ModeLive:
		c.Mode = ModeLive
		if c.Duration < c.Segment {
			return fmt.Errorf("%w: duration %v: want at least one segment (%v)", ErrConfig, c.Duration, c.Segment)
		}
	case ModeVOD:
		c.VODLength = cmp.Or(c.VODLength, DefaultVODLength)
		c.WatchMin = cmp.Or(c.WatchMin, DefaultWatchMin)
		c.WatchMax = cmp.Or(c.WatchMax, DefaultWatchMax)
		if c.VODLength < c.Segment {
			return fmt.Errorf("%w: VOD length %v: want at least one segment (%v)", ErrConfig, c.VODLength, c.Segment)
		}
		if c.WatchMin < 0 || c.WatchMax < c.WatchMin {
			return fmt.Errorf("%w: watch window %v–%v: want 0 < min ≤ max", ErrConfig, c.WatchMin, c.WatchMax)
		}
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

// segmentBytes is the size of every synthetic live segment.
func (c *StreamConfig) segmentBytes() int64 {
	return max(1, int64(c.Bitrate*c.Segment.Seconds()))
}

// segmentsWatched is the media segments each live viewer session downloads.
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
	// Media is the media segment bytes the player received, all of which
	// it plays: what the viewer watched, in bytes.
	Media int64
	// Downloaded (VOD) is what reached the viewer's machine to play the
	// session: the chunk bytes peers and the origin sent its peer,
	// duplicates included (P2P: /api/status's peer_data_received +
	// origin_data_received), or the player's own downloads (CDN-only).
	// FromPeers and FromOrigin are its first copies of verified chunks;
	// the rest of Downloaded is duplicates.
	Downloaded            int64
	FromPeers, FromOrigin int64
	// Chunks is the chunks the viewer's peer held at the end (P2P), and
	// HaveFrames and Haves the frames announcing chunks it sent to its
	// neighbours and the announcements they carried.
	Chunks, HaveFrames, Haves int64
	// Cohort is the viewer's peer's cohort in the operator policy's
	// experiments (the A/B run), "" otherwise.
	Cohort string
	Err    string
	// Steps are the player's requests until playback started, in order.
	Steps []StartupStep
}

// StreamRun is one of the two runs (P2P or CDN-only).
type StreamRun struct {
	Name          string // "p2p" or "cdn"
	Sessions      []Session
	Failed        int // sessions that ended in an error
	StartupP50    time.Duration
	StartupP95    time.Duration
	RebufferRatio float64       // Σ stall / Σ (play + stall)
	StallsPerHour float64       // Σ stalls / Σ hours of media played
	StallWall     time.Duration // Σ time stalled
	Stalls        int           // Σ stalls
	PlayerBytes   int64         // what the players received
	MediaBytes    int64         // media segment bytes the players received (and played)
	OriginBytes   int64         // origin egress during the run
	// OriginRequests is the HTTP requests the origin answered (playlists,
	// segments, chunks, manifests, hash layers).
	OriginRequests int64
	// UpdateRequests (P2P live) is the origin requests for the channel's
	// latest update (the followers' polls, 304s included) during the
	// viewing, UpdateSegments the segments the encoder wrote meanwhile,
	// and PeerSegments the viewers' peers' lifetimes in segment durations
	// (Σ over sessions). UpdateRequests / UpdateSegments is what the
	// origin pays per segment for keeping every peer's playlist current;
	// UpdateRequests / PeerSegments is that per peer.
	UpdateRequests, UpdateSegments int64
	PeerSegments                   float64
	// ViewerMinutes is the media played by all viewers, in minutes, and
	// OriginPerViewerMinute the origin bytes per such minute.
	ViewerMinutes         float64
	OriginPerViewerMinute float64
	// Offload is 1 − origin egress / bytes the players received: the share
	// of viewers' bytes the origin did not have to send.
	Offload float64
	// FromPeers and FromOrigin are what the viewers' peers received (P2P
	// VOD).
	FromPeers, FromOrigin int64
	// Chunks, HaveFrames and Haves are Σ Session's (P2P).
	Chunks, HaveFrames, Haves int64
	// Downloaded is Σ Session.Downloaded (VOD), duplicates included
	// (Duplicates). DownloadRatioP50 and
	// DownloadRatioMax are the median and largest, across viewers who
	// played something, of downloaded ÷ media bytes played.
	Downloaded                         int64
	DownloadRatioP50, DownloadRatioMax float64
	Wall                               time.Duration
	// CPU is the benchmark process's CPU time while the viewers watched
	// (ViewingWall): origin, tracker, peers and players together.
	CPU, ViewingWall time.Duration
	// Cohorts (the A/B run, StreamConfig.CohortSplit) is the run split by
	// cohort; FleetErr says why the tracker's side is missing, if it is.
	Cohorts  []CohortRun
	FleetErr string
}

// StreamResult holds both runs of one benchmark.
type StreamResult struct {
	Config StreamConfig
	P2P    *StreamRun // nil when skipped
	CDN    *StreamRun // nil when skipped
	// StreamBytes is one live viewer's media: bitrate × duration (0 for VOD,
	// where every viewer watches a window of its own).
	StreamBytes int64
	// VOD: LowerBound is the bytes of the distinct (rendition, segment)
	// pairs the viewers' windows cover. Each of those bytes has to leave
	// the origin at least once, however well peers share: no P2P run can
	// have less origin egress. WatchedSegments of VODSegments (all
	// renditions) are in the windows.
	LowerBound                   int64
	WatchedSegments, VODSegments int
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
	if cfg.Mode == ModeVOD {
		return runVOD(ctx, cfg, dir)
	}
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

// summarize fills a run's aggregates from its sessions and the origin's
// counters.
func (r *StreamRun) summarize(originBytes, originRequests int64) {
	var startups []time.Duration
	var play, stall, played time.Duration
	type viewerBytes struct{ downloaded, media int64 }
	perViewer := map[int]*viewerBytes{}
	for _, s := range r.Sessions {
		r.PlayerBytes += s.Bytes
		r.MediaBytes += s.Media
		r.Downloaded += s.Downloaded
		r.FromPeers += s.FromPeers
		r.FromOrigin += s.FromOrigin
		r.Chunks += s.Chunks
		r.HaveFrames += s.HaveFrames
		r.Haves += s.Haves
		played += s.Played
		vb := perViewer[s.Viewer]
		if vb == nil {
			vb = &viewerBytes{}
			perViewer[s.Viewer] = vb
		}
		vb.downloaded += s.Downloaded
		vb.media += s.Media
		if s.Err != "" {
			r.Failed++
			continue
		}
		startups = append(startups, s.Startup)
		play += s.PlayWall
		stall += s.StallWall
		r.Stalls += s.Stalls
	}
	slices.Sort(startups)
	r.StartupP50 = percentile(startups, 0.50)
	r.StartupP95 = percentile(startups, 0.95)
	r.StallWall = stall
	if play+stall > 0 {
		r.RebufferRatio = float64(stall) / float64(play+stall)
	}
	if played > 0 {
		r.StallsPerHour = float64(r.Stalls) / played.Hours()
		r.ViewerMinutes = played.Minutes()
		r.OriginPerViewerMinute = float64(originBytes) / r.ViewerMinutes
	}
	r.OriginBytes, r.OriginRequests = originBytes, originRequests
	if r.PlayerBytes > 0 {
		r.Offload = min(1, max(0, 1-float64(originBytes)/float64(r.PlayerBytes)))
	}
	var ratios []float64
	for _, vb := range perViewer {
		if vb.media > 0 {
			ratios = append(ratios, float64(vb.downloaded)/float64(vb.media))
		}
	}
	if len(ratios) > 0 {
		slices.Sort(ratios)
		r.DownloadRatioP50 = ratios[(len(ratios)+1)/2-1] // nearest rank
		r.DownloadRatioMax = ratios[len(ratios)-1]
	}
}

// Duplicates is what the viewers' peers downloaded beyond their first
// copies (P2P VOD): chunks that came twice, from two peers or from a peer
// and the origin.
func (r *StreamRun) Duplicates() int64 {
	if r.FromPeers+r.FromOrigin == 0 {
		return 0
	}
	return r.Downloaded - r.FromPeers - r.FromOrigin
}

// CPUCores is CPU ÷ ViewingWall: the cores the run kept busy while the
// viewers watched (0 when unknown).
func (r *StreamRun) CPUCores() float64 {
	if r.ViewingWall <= 0 {
		return 0
	}
	return r.CPU.Seconds() / r.ViewingWall.Seconds()
}

// UpdateRequestsPerSegment is origin update requests per segment written
// (0 when unknown).
func (r *StreamRun) UpdateRequestsPerSegment() float64 {
	if r.UpdateSegments == 0 {
		return 0
	}
	return float64(r.UpdateRequests) / float64(r.UpdateSegments)
}

// UpdateRequestsPerPeerSegment is origin update requests per peer per
// segment duration (0 when unknown).
func (r *StreamRun) UpdateRequestsPerPeerSegment() float64 {
	if r.PeerSegments == 0 {
		return 0
	}
	return float64(r.UpdateRequests) / r.PeerSegments
}

// OriginPerViewerMinuteRatio is the P2P run's origin bytes per
// viewer-minute over the CDN-only run's (0 unless both ran).
func (r *StreamResult) OriginPerViewerMinuteRatio() float64 {
	if r.P2P == nil || r.CDN == nil || r.CDN.OriginPerViewerMinute == 0 {
		return 0
	}
	return r.P2P.OriginPerViewerMinute / r.CDN.OriginPerViewerMinute
}

// BoundOverCDN is LowerBound over the CDN-only run's origin bytes: the
// smallest P2P ÷ CDN-only origin ratio these windows allow (0 unless known).
func (r *StreamResult) BoundOverCDN() float64 {
	if r.CDN == nil || r.CDN.OriginBytes == 0 {
		return 0
	}
	return float64(r.LowerBound) / float64(r.CDN.OriginBytes)
}

// percentile is the nearest-rank percentile of sorted d (0 if empty).
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	k := int(math.Ceil(p*float64(len(d)))) - 1
	return d[min(max(k, 0), len(d)-1)]
}
