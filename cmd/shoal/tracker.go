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
	reportThreshold := fs.Int("report-threshold", tracker.DefaultReportThreshold, "distinct reporters (from distinct /24 or /48 networks) whose reports of bad chunks stop a peer being handed out")
	reportHalfLife := fs.Duration("report-half-life", tracker.DefaultReportHalfLife, "how long a report of a bad chunk takes to count half")
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
	if *reportThreshold < 2 {
		return usagef("--report-threshold must be at least 2 (one report never excludes a peer), got %d", *reportThreshold)
	}
	if *reportHalfLife <= 0 {
		return usagef("--report-half-life must be positive, got %v", *reportHalfLife)
	}
	return tracker.Run(ctx, tracker.Config{
		ReportThreshold: *reportThreshold, ReportHalfLife: *reportHalfLife,
		Listen:   *listen,
		Interval: *interval,
		MaxPeers: *maxPeers,
		Logger:   log,
		Audit:    sink,
	})
}
