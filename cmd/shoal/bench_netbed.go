package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/shoal-cdn/shoal/bench"
	"github.com/shoal-cdn/shoal/core"
)

func init() {
	benchCommands["netbed"] = command{"real shoal (and aria2) processes in network namespaces with tc-shaped links (root)", runBenchNetbed}
}

func runBenchNetbed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench netbed", "[flags]", stderr)
	receivers := fs.Int("receivers", 10, "N: receivers, each a `shoal get --tracker` in its own namespace")
	size := fs.String("size", "128MiB", "F: content size")
	chunk := fs.String("chunk-size", "256KiB", "chunk size (also the torrent's piece size)")
	originUp := fs.String("origin-up", "100Mbit", "u_s: the origin's upload (0: unshaped)")
	peerUp := fs.String("peer-up", "20Mbit", "u_i: each receiver's upload (0: unshaped)")
	peerDown := fs.String("peer-down", "100Mbit", "d_i: each receiver's download (0: unshaped)")
	runs := fs.Int("runs", 3, "runs per client; the report gives each run and the medians")
	clients := fs.String("clients", "shoal", "comma-separated: shoal, aria2 (aria2 needs aria2c and mktorrent)")
	getArgs := fs.String("get-args", "", "extra flags for every receiver's shoal get, space-separated")
	originServer := fs.String("origin-server", bench.OriginNginx, "what serves the published layout to shoal's receivers: nginx (a stock nginx with deploy/nginx/shoal-origin.conf; apt-get install nginx-light) or shoal (shoal origin)")
	seed := fs.Uint64("seed", 1, "seed of the content")
	timeout := fs.Duration("timeout", 0, "bound on one run (default 10m)")
	dir := fs.String("dir", "", "where the layout, caches and outputs go, and each run's receiver logs (shoal-run<k>.logs/get<i>.log, lines stamped with seconds since the run began); caches and outputs are removed after each run (default: a temp dir, removed after)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg := bench.NetbedConfig{Receivers: *receivers, Runs: *runs, Seed: *seed, Timeout: *timeout, Dir: *dir,
		Clients: strings.Split(*clients, ","), GetArgs: strings.Fields(*getArgs), OriginServer: *originServer}
	if *originServer != bench.OriginNginx && *originServer != bench.OriginShoal {
		return usagef("--origin-server %q: want nginx or shoal", *originServer)
	}
	var err error
	if cfg.Size, err = core.ParseSize(*size); err != nil || cfg.Size <= 0 {
		return usagef("--size %q: want a positive size such as 128MiB", *size)
	}
	if cfg.ChunkSize, err = core.ParseSize(*chunk); err != nil {
		return usagef("--chunk-size: %v", err)
	}
	for _, r := range []struct {
		flag, in string
		out      *float64
	}{{"origin-up", *originUp, &cfg.OriginUp}, {"peer-up", *peerUp, &cfg.PeerUp}, {"peer-down", *peerDown, &cfg.PeerDown}} {
		if *r.out, err = parseRate(r.in); err != nil {
			return usagef("--%s: %v", r.flag, err)
		}
	}
	if !*quiet {
		cfg.Progress = func(s string) { fmt.Fprintln(stderr, s) }
	}
	res, err := bench.RunNetbed(ctx, cfg)
	if res != nil {
		res.WriteReport(stdout)
	}
	return err
}
