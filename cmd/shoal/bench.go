package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/bench"
	"github.com/shoal-cdn/shoal/core"
)

// benchCommands are the benchmarks under `shoal bench`.
var benchCommands = map[string]command{
	"swarm":   {summary: "flash crowd of N shaped peers and a capped origin, in one process", run: runBenchSwarm},
	"stream":  {summary: "N viewers of a live or VOD stream, P2P and CDN-only side by side", run: runBenchStream},
	"tracker": {summary: "announce load on trackers (in memory, checks off and on, or running ones): announces/s, p50/p99", run: runBenchTracker},
}

func init() {
	register("bench", "benchmarks: swarm, stream, tracker", runBench)
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		benchUsage(stderr)
		if len(args) == 0 {
			return usagef("want a benchmark name")
		}
		return nil
	}
	c, ok := benchCommands[args[0]]
	if !ok {
		benchUsage(stderr)
		return usagef("unknown benchmark %q", args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func benchUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: shoal bench BENCHMARK [flags]\n\nbenchmarks:")
	names := make([]string, 0, len(benchCommands))
	for n := range benchCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, benchCommands[n].summary)
	}
}

func runBenchSwarm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench swarm", "[flags]", stderr)
	peers := fs.Int("peers", bench.DefaultPeers, "N: peers in the flash crowd")
	size := fs.String("size", "256MiB", "F: content size")
	originUp := fs.String("origin-up", "100Mbit", "u_s: origin upload cap (0: unlimited)")
	peerUp := fs.String("peer-up", "20Mbit", "u_i: each peer's upload cap (0: unlimited)")
	peerDown := fs.String("peer-down", "100Mbit", "d_i: each peer's download cap, from peers and origin together (0: unlimited)")
	chunk := fs.String("chunk-size", "256KiB", "chunk size (power of two, 16KiB–16MiB)")
	seed := fs.Uint64("seed", 1, "seed of the content, keys and peer randomness")
	spread := fs.Duration("join-spread", 0, "spread the peers' arrivals evenly over this long (0: all at once)")
	assist := fs.Bool("origin-assist", false, "let peers keep the origin busy with chunks they lack: faster, but the origin sends several copies")
	dir := fs.String("dir", "", "where temporary stores and the origin layout go (default: the system temp dir)")
	every := fs.Duration("progress", bench.DefaultProgress, "interval between progress lines (on stderr)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg := bench.SwarmConfig{Peers: *peers, Seed: *seed, JoinSpread: *spread, OriginAssist: *assist, Dir: *dir, ProgressEvery: *every}
	var err error
	if cfg.Size, err = core.ParseSize(*size); err != nil {
		return usagef("--size: %v", err)
	}
	if cfg.ChunkSize, err = core.ParseSize(*chunk); err != nil {
		return usagef("--chunk-size: %v", err)
	}
	for _, r := range []struct {
		flag string
		in   string
		out  *float64
	}{{"origin-up", *originUp, &cfg.OriginUp}, {"peer-up", *peerUp, &cfg.PeerUp}, {"peer-down", *peerDown, &cfg.PeerDown}} {
		if *r.out, err = parseRate(r.in); err != nil {
			return usagef("--%s: %v", r.flag, err)
		}
	}
	if !*quiet {
		cfg.Progress = func(p bench.Progress) { fmt.Fprintln(stderr, p) }
	}
	fmt.Fprintf(stderr, "bench swarm: N=%d F=%s u_s=%s u_i=%s d_i=%s; T* = %v\n", cfg.Peers, bench.MiB(cfg.Size),
		bench.Mbit(cfg.OriginUp), bench.Mbit(cfg.PeerUp), bench.Mbit(cfg.PeerDown),
		bench.LowerBound(cfg.Peers, cfg.Size, cfg.OriginUp, cfg.PeerUp, cfg.PeerDown).Round(100*time.Millisecond))
	res, err := bench.RunSwarm(ctx, cfg)
	if res != nil {
		res.WriteReport(stdout)
	}
	return err
}

func runBenchStream(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench stream", "[flags]", stderr)
	viewers := fs.Int("viewers", bench.DefaultStreamViewers, "N: viewers")
	bitrate := fs.String("bitrate", "4Mbit", "stream bitrate (vod: the top rendition's; the others are 62.5% and 25% of it)")
	segment := fs.Duration("segment", bench.DefaultStreamSegment, "segment duration")
	duration := fs.Duration("duration", bench.DefaultStreamDuration, "media each viewer watches (live)")
	mode := fs.String("mode", bench.ModeLive, "live, or vod: viewers watch random windows of a three-rendition VOD")
	vodLength := fs.Duration("vod-length", bench.DefaultVODLength, "the VOD's length (vod)")
	watchMin := fs.Duration("watch-min", bench.DefaultWatchMin, "shortest window a viewer watches (vod)")
	watchMax := fs.Duration("watch-max", bench.DefaultWatchMax, "longest window a viewer watches (vod)")
	peerUp := fs.String("peer-up", "8Mbit", "u_i: each viewer's peer upload cap (0: unlimited)")
	peerDown := fs.String("peer-down", "50Mbit", "d_i: each viewer's download cap (0: unlimited)")
	originUp := fs.String("origin-up", "0", "the origin's (CDN's) upload cap (0: unlimited)")
	spread := fs.Duration("join-spread", bench.DefaultStreamSpread, "spread the viewers' arrivals evenly over this long")
	churn := fs.Float64("churn", 0, "fraction of viewers that leave mid-stream and rejoin")
	threshold := fs.Duration("start-threshold", 0, "media buffered before playback starts (default 2 segments)")
	chunk := fs.String("chunk-size", "64KiB", "chunk size of the published segments")
	seed := fs.Uint64("seed", 1, "seed of the media, keys, churn and (vod) the viewers' windows")
	only := fs.String("only", "", "run only p2p or only cdn (default both)")
	transport := fs.String("transport", bench.TransportMem, "the viewers' peers' network: mem (in memory) or libp2p (real libp2p hosts on loopback, with GossipSub spreading live channel updates)")
	dir := fs.String("dir", "", "where temporary files go (default: the system temp dir)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	cohortSplit := fs.Float64("cohort-split", 0, "A/B run: the P2P run's tracker holds an operator policy putting this percent of the viewers' peers in a P2P cohort and turning P2P off for the rest; the report splits the run by cohort, from the players and from the tracker's fleet telemetry (0: off)")
	hold := fs.Duration("hold", 0, "keep the P2P run's tracker serving this long after the run (its /dashboard/ shows the run's fleet telemetry)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg := bench.StreamConfig{
		CohortSplit: *cohortSplit, Hold: *hold,
		Viewers: *viewers, Segment: *segment, Duration: *duration, Mode: *mode, JoinSpread: *spread,
		VODLength: *vodLength, WatchMin: *watchMin, WatchMax: *watchMax,
		Churn: *churn, StartThreshold: *threshold, Seed: *seed, Dir: *dir,
		SkipCDN: *only == "p2p", SkipP2P: *only == "cdn", Transport: *transport,
	}
	if *only != "" && *only != "p2p" && *only != "cdn" {
		return usagef("--only %q: want p2p or cdn", *only)
	}
	var err error
	if cfg.ChunkSize, err = core.ParseSize(*chunk); err != nil {
		return usagef("--chunk-size: %v", err)
	}
	for _, r := range []struct {
		flag string
		in   string
		out  *float64
	}{{"bitrate", *bitrate, &cfg.Bitrate}, {"peer-up", *peerUp, &cfg.PeerUp}, {"peer-down", *peerDown, &cfg.PeerDown}, {"origin-up", *originUp, &cfg.OriginUp}} {
		if *r.out, err = parseRate(r.in); err != nil {
			return usagef("--%s: %v", r.flag, err)
		}
	}
	if !*quiet {
		cfg.Progress = func(s string) { fmt.Fprintln(stderr, s) }
	}
	cfg.OnTracker = func(url string) {
		fmt.Fprintf(stderr, "bench stream: tracker %s (dashboard %s/dashboard/#token=%s)\n", url, url, bench.StreamAdminToken)
	}
	if cfg.Mode == bench.ModeVOD {
		fmt.Fprintf(stderr, "bench stream: vod, %d viewers, %v VOD up to %s, %v segments, windows of %v–%v, spread %v: P2P run, then CDN-only run\n",
			cfg.Viewers, *vodLength, bench.Mbit(cfg.Bitrate), cfg.Segment, *watchMin, *watchMax, cfg.JoinSpread)
	} else {
		fmt.Fprintf(stderr, "bench stream: %s, %d viewers, %s, %v segments, %v each, spread %v: P2P run, then CDN-only run\n",
			cfg.Mode, cfg.Viewers, bench.Mbit(cfg.Bitrate), cfg.Segment, cfg.Duration, cfg.JoinSpread)
	}
	res, err := bench.RunStream(ctx, cfg)
	if res != nil {
		res.WriteReport(stdout)
	}
	return err
}

// parseRate is core.ParseRate that also takes a bare 0 for unlimited.
func parseRate(s string) (float64, error) {
	if strings.TrimSpace(s) == "0" {
		return 0, nil
	}
	return core.ParseRate(s)
}
