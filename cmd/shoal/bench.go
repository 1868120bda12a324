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

// benchCommands are the benchmarks under `shoal bench`; "stream" will join
// "swarm".
var benchCommands = map[string]command{
	"swarm": {summary: "flash crowd of N shaped peers and a capped origin, in one process", run: runBenchSwarm},
}

func init() {
	register("bench", "benchmarks: swarm", runBench)
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

// parseRate is core.ParseRate that also takes a bare 0 for unlimited.
func parseRate(s string) (float64, error) {
	if strings.TrimSpace(s) == "0" {
		return 0, nil
	}
	return core.ParseRate(s)
}
