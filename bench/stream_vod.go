package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/publish"
)

// vodLadder is the VOD's renditions as fractions of the top bitrate, lowest
// first: with the default 4 Mbit/s, a 1 / 2.5 / 4 Mbit/s ladder.
var vodLadder = []float64{0.25, 0.625, 1}

// vodMaster is the VOD's master playlist; rendition i lives under r<i>/.
const vodMaster = "master.m3u8"

// pickHeadroom is how much faster than a rendition's bitrate a viewer's
// download must be for it to play that rendition.
const pickHeadroom = 1.5

// pickRendition is the variant a player with a download of down bytes/s
// (0: unlimited) plays, for its whole session: the highest whose bandwidth
// (bits/s) × pickHeadroom fits in down, or the lowest if none does. A
// player with an adaptive-bitrate algorithm would settle there on a steady
// link; the benchmark leaves switching out so that what a viewer watches is
// known in advance.
func pickRendition(bandwidths []int64, down float64) int {
	best, lowest := -1, 0
	for i, bw := range bandwidths {
		if bw < bandwidths[lowest] {
			lowest = i
		}
		fits := down <= 0 || float64(bw)*pickHeadroom <= down*8
		if fits && (best < 0 || bw > bandwidths[best]) {
			best = i
		}
	}
	if best < 0 {
		return lowest
	}
	return best
}

// vodBandwidths is each rendition's BANDWIDTH (bits/s), lowest first.
func vodBandwidths(cfg *StreamConfig) []int64 {
	out := make([]int64, len(vodLadder))
	for i, f := range vodLadder {
		out[i] = max(1, int64(math.Round(cfg.Bitrate*f*8)))
	}
	return out
}

// vodSegments is the VOD's segment durations: VODLength in segments of
// Segment, the last one shorter if it does not divide evenly.
func vodSegments(cfg *StreamConfig) []time.Duration {
	n := int((cfg.VODLength + cfg.Segment - 1) / cfg.Segment)
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = cfg.Segment
	}
	out[n-1] = cfg.VODLength - time.Duration(n-1)*cfg.Segment
	return out
}

// vodSegmentBytes is the size of a segment of d at bandwidth bw bits/s.
func vodSegmentBytes(bw int64, d time.Duration) int64 {
	return max(1, int64(float64(bw)/8*d.Seconds()))
}

// vodWindows draws every viewer's window of the VOD from the seed: a start
// segment uniform over the VOD and a watch time uniform in [WatchMin,
// WatchMax], rounded up to whole segments and cut short at the end; and the
// rendition its player will pick (pickRendition on its download cap).
func vodWindows(cfg *StreamConfig, ps []viewerPlan) {
	r := rand.New(rand.NewPCG(cfg.Seed, 0x70d))
	n := len(vodSegments(cfg))
	rend := pickRendition(vodBandwidths(cfg), cfg.PeerDown)
	for k := range ps {
		start := r.IntN(n)
		watch := cfg.WatchMin + time.Duration(r.Int64N(int64(cfg.WatchMax-cfg.WatchMin)+1))
		segs := max(1, int((watch+cfg.Segment-1)/cfg.Segment))
		ps[k].start, ps[k].segments, ps[k].rendition = int64(start), min(segs, n-start), rend
	}
}

// vodLowerBound is the bytes of the distinct (rendition, segment) pairs the
// plans watch, and how many pairs that is: every one of those bytes must
// leave the origin at least once.
func vodLowerBound(cfg *StreamConfig, ps []viewerPlan) (int64, int) {
	segs, bws := vodSegments(cfg), vodBandwidths(cfg)
	seen := map[[2]int]bool{}
	var total int64
	for _, p := range ps {
		for q := int(p.start); q < int(p.start)+p.segments; q++ {
			if k := [2]int{p.rendition, q}; !seen[k] {
				seen[k] = true
				total += vodSegmentBytes(bws[p.rendition], segs[q])
			}
		}
	}
	return total, len(seen)
}

// vodContent is the benchmark's VOD on disk.
type vodContent struct {
	// dir is the plain HLS presentation, as an encoder or packager writes
	// it: master.m3u8 and r<i>/index.m3u8 with r<i>/seg-NNNNNN.ts; the
	// CDN-only run serves it as is.
	dir string
	// layout is the same presentation published as one content (ID id)
	// for the P2P run's origin; "" when the P2P run is skipped.
	layout string
	id     core.ContentID
	bytes  int64 // media bytes, all renditions
}

// makeVOD writes the VOD's HLS presentation under dir, with synthetic
// segments drawn from (seed, rendition, segment), and publishes it unless
// the P2P run is skipped. The key and creation time come from the seed, so
// the content ID is reproducible.
func makeVOD(ctx context.Context, cfg *StreamConfig, dir string) (*vodContent, error) {
	v := &vodContent{dir: filepath.Join(dir, "hls")}
	segs, bws := vodSegments(cfg), vodBandwidths(cfg)
	master := &media.Master{Version: 3}
	type job struct{ rend, seq int }
	jobs := make(chan job)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				b := segmentData(cfg.Seed, j.rend+1, int64(j.seq), vodSegmentBytes(bws[j.rend], segs[j.seq]))
				if err := os.WriteFile(filepath.Join(v.dir, renditionDir(j.rend), segmentName(int64(j.seq))), b, 0o644); err != nil {
					select {
					case errs <- fmt.Errorf("bench: %w", err):
					default:
					}
				}
			}
		}()
	}
	feed := func() error {
		defer close(jobs)
		for ri, bw := range bws {
			rd := renditionDir(ri)
			if err := os.MkdirAll(filepath.Join(v.dir, rd), 0o755); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			pl := &media.MediaPlaylist{Version: 3, TargetDuration: targetDuration(cfg.Segment), Type: "VOD", Ended: true}
			for q, d := range segs {
				pl.Segments = append(pl.Segments, media.Segment{URI: segmentName(int64(q)), Duration: d, Seq: int64(q)})
				v.bytes += vodSegmentBytes(bw, d)
				select {
				case jobs <- job{ri, q}:
				case err := <-errs:
					return err
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			b, err := pl.Encode()
			if err != nil {
				return fmt.Errorf("bench: VOD playlist: %w", err)
			}
			if err := os.WriteFile(filepath.Join(v.dir, rd, sourcePlaylist), b, 0o644); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			master.Variants = append(master.Variants, media.Variant{URI: rd + "/" + sourcePlaylist, Bandwidth: bw})
		}
		return nil
	}
	err := feed()
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		return nil, err
	}
	b, err := master.Encode()
	if err != nil {
		return nil, fmt.Errorf("bench: VOD master playlist: %w", err)
	}
	if err := os.WriteFile(filepath.Join(v.dir, vodMaster), b, 0o644); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if cfg.SkipP2P {
		return v, nil
	}
	v.layout = filepath.Join(dir, "origin")
	res, err := publish.Publish(ctx, publish.Config{
		Key: streamKey(cfg.Seed), Out: v.layout, ChunkSize: cfg.ChunkSize, Name: "bench-vod",
		Paths: []string{v.dir}, Created: time.Unix(1_700_000_000, 0).UTC(), Logger: cfg.Logger,
		// Paged: a viewer's join waits for the file table without the
		// segments' roots, and fetches the 4 KiB root page of what it plays.
		ManifestVersion: manifest.VersionPaged,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: publish VOD: %w", err)
	}
	v.id = res.ID
	return v, nil
}

func renditionDir(i int) string { return fmt.Sprintf("r%d", i) }

// runVOD makes the VOD, then plays the viewers' windows of it through Shoal
// and then straight from the CDN.
func runVOD(ctx context.Context, cfg StreamConfig, dir string) (*StreamResult, error) {
	res := &StreamResult{Config: cfg}
	segs := vodSegments(&cfg)
	res.VODSegments = len(segs) * len(vodLadder)
	res.LowerBound, res.WatchedSegments = vodLowerBound(&cfg, plans(&cfg))
	t := time.Now()
	vod, err := makeVOD(ctx, &cfg, filepath.Join(dir, "vod"))
	if err != nil {
		return res, err
	}
	cfg.Progress(fmt.Sprintf("VOD of %v in %d × %d segments, %s, written and published in %s",
		cfg.VODLength, len(vodLadder), len(segs), MiB(vod.bytes), secs(time.Since(t))))
	if !cfg.SkipP2P {
		if res.P2P, err = runVODP2P(ctx, cfg, dir, vod); err != nil {
			return res, err
		}
	}
	if !cfg.SkipCDN {
		if res.CDN, err = runVODCDN(ctx, cfg, vod); err != nil {
			return res, err
		}
	}
	return res, nil
}

// runVODP2P plays the viewers' windows through Shoal: the VOD is one
// published content on the origin, and every viewer plays
// /c/<content>/master.m3u8 from the gateway of its own peer (viewerPeers).
func runVODP2P(ctx context.Context, cfg StreamConfig, dir string, vod *vodContent) (*StreamRun, error) {
	wall := time.Now()
	srv, originURL, stopOrigin, err := serveOrigin(&cfg, vod.layout)
	if err != nil {
		return nil, err
	}
	defer stopOrigin()
	tr, err := serveTracker(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer tr.stop()
	vp := &viewerPeers{
		cfg: &cfg, dir: filepath.Join(dir, "p2p", "peers"), mem: netx.NewMemNetwork(),
		tracker: tr.url, origin: originURL, trust: manifest.PublicOf(streamKey(cfg.Seed)), operators: tr.operators,
	}
	path := "/c/" + vod.id.String() + "/" + vodMaster
	open := func(ctx context.Context, k, gen int) (viewerEnv, error) {
		return vp.open(ctx, k, gen, path)
	}
	run := &StreamRun{Name: "p2p"}
	cpu := startCPU()
	run.Sessions = runViewers(ctx, &cfg, "p2p", open, srv.BytesServed)
	run.CPU, run.ViewingWall = cpu()
	run.summarize(srv.BytesServed(), srv.Requests())
	run.Wall = time.Since(wall)
	tr.finish(ctx, &cfg, run)
	if err := ctx.Err(); err != nil {
		return run, fmt.Errorf("bench: p2p run interrupted: %w", err)
	}
	return run, nil
}

// runVODCDN is the VOD baseline: the same windows and download caps, every
// player reading the plain HLS presentation straight from the origin (the
// CDN), as it would without Shoal.
func runVODCDN(ctx context.Context, cfg StreamConfig, vod *vodContent) (*StreamRun, error) {
	wall := time.Now()
	srv, originURL, stopOrigin, err := serveOrigin(&cfg, vod.dir)
	if err != nil {
		return nil, err
	}
	defer stopOrigin()
	open := func(ctx context.Context, k, gen int) (viewerEnv, error) {
		hc := shapedHTTP(newDownLimiter(cfg.PeerDown), 4)
		return viewerEnv{playlist: originURL + "/" + vodMaster, client: hc, stop: hc.CloseIdleConnections}, nil
	}
	run := &StreamRun{Name: "cdn"}
	cpu := startCPU()
	run.Sessions = runViewers(ctx, &cfg, "cdn", open, srv.BytesServed)
	run.CPU, run.ViewingWall = cpu()
	run.summarize(srv.BytesServed(), srv.Requests())
	run.Wall = time.Since(wall)
	return run, ctx.Err()
}
