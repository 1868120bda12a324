package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/shoal-cdn/shoal/tracker"
)

func init() {
	register("tracker", "run a tracker: peers announce content and learn each other", runTracker)
}

func runTracker(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("tracker", "[--listen ADDR] [--interval DUR] [--max-peers N]", stderr)
	listen := fs.String("listen", tracker.DefaultListen, "TCP address to serve announces, /api/swarms and /metrics on")
	interval := fs.Duration("interval", tracker.DefaultInterval, "re-announce interval handed to peers (jittered ±10%); silent peers expire after 3×")
	maxPeers := fs.Int("max-peers", tracker.DefaultMaxPeers, "most peers returned per announce")
	af := addAuditFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *interval <= 0 {
		return usagef("--interval must be positive, got %v", *interval)
	}
	if *maxPeers <= 0 {
		return usagef("--max-peers must be positive, got %d", *maxPeers)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	sink, closeAudit, err := af.open(log)
	if err != nil {
		return err
	}
	defer closeAudit()
	return tracker.Run(ctx, tracker.Config{
		Listen:   *listen,
		Interval: *interval,
		MaxPeers: *maxPeers,
		Logger:   log,
		Audit:    sink,
	})
}
