package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// streamProgressEvery is the interval between progress lines.
const streamProgressEvery = 5 * time.Second

// viewerPlan is when a viewer arrives, what it watches and, if it churns,
// after how many segments it leaves. Both runs use the same plans.
type viewerPlan struct {
	joinAt time.Duration
	// start is the first segment's sequence number (VOD), or -1: the
	// playlist's own start (live: behind the live edge).
	start int64
	// segments is what the viewer watches in all; rendition (VOD) is the
	// index of the rendition it plays, lowest bitrate first.
	segments, rendition int
	leaveAfter          int // segments; 0: stays to the end
}

// plans spreads the arrivals evenly over JoinSpread, draws each VOD
// viewer's window, and picks the churning viewers and their departure times
// from the seed.
func plans(cfg *StreamConfig) []viewerPlan {
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5717ea))
	out := make([]viewerPlan, cfg.Viewers)
	for k := range out {
		out[k].start, out[k].segments = -1, cfg.segmentsWatched()
		if cfg.Viewers > 1 {
			out[k].joinAt = cfg.JoinSpread * time.Duration(k) / time.Duration(cfg.Viewers-1)
		}
	}
	if cfg.Mode == ModeVOD {
		vodWindows(cfg, out)
	}
	churners := int(cfg.Churn*float64(cfg.Viewers) + 0.5)
	for _, k := range r.Perm(cfg.Viewers)[:churners] {
		// Somewhere in the middle of what it watches: after start-up,
		// well before the end.
		out[k].leaveAfter = max(1, int((0.3+0.4*r.Float64())*float64(out[k].segments)))
	}
	return out
}

// viewerEnv is what a session plays through: a playlist URL (media or
// master), the player's HTTP client, and how to tear the viewer's side down
// (its peer, for P2P). counts, if set, tells what the viewer's peer
// received and announced; it is called before stop.
type viewerEnv struct {
	playlist string
	client   *http.Client
	counts   func() peerCounts
	cohort   func() string // the peer's cohort (A/B run); nil: none
	stop     func()
}

// peerCounts is what a viewer's peer did, from its /api/status figures.
type peerCounts struct {
	fromPeers, fromOrigin int64 // bytes received, first copies
	received              int64 // chunk bytes peers and the origin sent, duplicates included
	chunks                int64 // chunks held
	haveFrames, haves     int64 // frames announcing chunks to peers, and the announcements
}

// runViewers plays every viewer's sessions, each through an environment
// from open (called at the session's arrival, gen counting the viewer's
// sessions), and returns the sessions in viewer order.
func runViewers(ctx context.Context, cfg *StreamConfig, name string, open func(ctx context.Context, viewer, gen int) (viewerEnv, error), origin func() int64) []Session {
	start := time.Now()
	ps := plans(cfg)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards sessions
		sessions = make([][]Session, len(ps))
		playing  atomic.Int64
		done     atomic.Int64
	)
	play := func(k, gen int, from int64, want int) (int, bool) {
		joined := time.Since(start)
		env, err := open(ctx, k, gen)
		if err != nil {
			mu.Lock()
			sessions[k] = append(sessions[k], Session{Viewer: k, Joined: joined, Err: err.Error()})
			mu.Unlock()
			return 0, false
		}
		playing.Add(1)
		s, got, err := watch(ctx, cfg, env.client, env.playlist, from, want)
		playing.Add(-1)
		if cfg.Mode == ModeVOD {
			s.Downloaded = s.Bytes // the player fetched everything itself
		}
		if env.counts != nil {
			c := env.counts()
			s.FromPeers, s.FromOrigin = c.fromPeers, c.fromOrigin
			s.Chunks, s.HaveFrames, s.Haves = c.chunks, c.haveFrames, c.haves
			if cfg.Mode == ModeVOD {
				s.Downloaded = c.received // what the peer's download carried
			}
		}
		if env.cohort != nil {
			s.Cohort = env.cohort()
		}
		env.stop()
		s.Viewer, s.Joined = k, joined
		mu.Lock()
		sessions[k] = append(sessions[k], s)
		mu.Unlock()
		if err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("viewer session failed", "run", name, "viewer", k, "err", err)
		}
		return got, err == nil
	}
	for k, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer done.Add(1)
			if core.Sleep(ctx, p.joinAt) != nil {
				return
			}
			first := p.segments
			if p.leaveAfter > 0 {
				first = min(p.segments, p.leaveAfter)
			}
			got, ok := play(k, 0, p.start, first)
			if !ok || got >= p.segments {
				return
			}
			// Away for a moment, then back with a fresh peer and player
			// for the rest: live from the live edge, VOD from where it
			// left off.
			if core.Sleep(ctx, cfg.Segment) != nil {
				return
			}
			from := p.start
			if from >= 0 {
				from += int64(got)
			}
			play(k, 1, from, p.segments-got)
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(streamProgressEvery)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			out := make([]Session, 0, len(ps))
			for _, s := range sessions {
				out = append(out, s...)
			}
			return out
		case <-tick.C:
			cfg.Progress(fmt.Sprintf("%s %6s  playing %d  done %d/%d  origin sent %s",
				name, secs(time.Since(start)), playing.Load(), done.Load(), len(ps), MiB(origin())))
		}
	}
}
