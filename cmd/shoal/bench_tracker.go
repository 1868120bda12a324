package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shoal-cdn/shoal/bench"
)

func runBenchTracker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench tracker", "[flags]", stderr)
	targets := fs.String("targets", bench.TargetMemory+","+bench.TargetMemoryChecks,
		"comma-separated, run in turn: "+bench.TargetMemory+" (in-process tracker, checks off), "+bench.TargetMemoryChecks+
			" (in-process, signatures, tokens and rate limits on), "+bench.TargetFloor+
			" (no tracker: a minimal fasthttp handler answering a fixed body with a session ticket, the floor this machine and generator allow), shoal:N:FLAGS (N child `shoal tracker FLAGS` processes, checks on), or a running tracker's loopback URL (replicas joined by '|'; run it with --trust-forwarded so each simulated peer has its own address)")
	peers := fs.Int("peers", bench.DefaultLoadPeers, "simulated peers announcing concurrently (real Ed25519 identities)")
	swarms := fs.Int("swarms", bench.DefaultLoadSwarms, "swarms the peers spread over")
	zipf := fs.Float64("zipf", 1.1, "exponent of the swarms' Zipf popularity (above 1)")
	session := fs.Int("session", bench.DefaultLoadSession, "mean announces of one peer session (started … completed … stopped); then a new identity joins")
	conns := fs.Int("conns", bench.DefaultLoadConns, "keep-alive connections, one request in flight on each")
	duration := fs.Duration("duration", bench.DefaultLoadDuration, "longest run per target")
	announces := fs.Int("announces", bench.DefaultLoadAnnounces, "most announces per target (signed before the run starts)")
	redis := fs.String("redis", "", "also run child `shoal tracker --redis URL` processes, 1 then 2 replicas on that Redis (targets shoal:1:… and shoal:2:…)")
	cold := fs.Bool("cold", false, "time the swarms' filling too: no warm-up, the run opens with every peer's first (signed) announce at once, a flash crowd; by default those are sent before the clock starts and the run measures a steady state")
	seed := fs.Uint64("seed", 1, "seed of the identities, swarms and churn")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg := bench.TrackerLoadConfig{
		Peers: *peers, Swarms: *swarms, ZipfS: *zipf, Session: *session, Conns: *conns,
		Duration: *duration, Announces: *announces, Cold: *cold, Seed: *seed,
	}
	cfg.Targets = commaList(*targets)
	if *redis != "" {
		cfg.Targets = append(cfg.Targets, bench.SpawnTarget(1, "--redis", *redis), bench.SpawnTarget(2, "--redis", *redis))
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench tracker: the shoal binary for spawned trackers: %w", err)
	}
	cfg.Exe = exe
	if !*quiet {
		cfg.Progress = func(s string) { fmt.Fprintln(stderr, "bench tracker:", s) }
	}
	res, err := bench.RunTrackerLoad(ctx, cfg)
	if len(res) > 0 {
		bench.WriteLoadReport(stdout, cfg, res)
	}
	if errors.Is(err, bench.ErrConfig) {
		return usageError{err}
	}
	return err
}
