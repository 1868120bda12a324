package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/sim"
)

func init() {
	register("sim", "simulate a scenario (YAML) with the swarm's own policy: P2P vs CDN-only report", runSim)
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim", "SCENARIO.yaml [flags]", stderr)
	out := fs.String("out", "", "directory for summary.txt, timeseries.csv, peers.csv, report.svg (default sim-out/<scenario name>)")
	seed := fs.Int64("seed", -1, "random seed (default: the scenario's)")
	ab := fs.Bool("ab", true, "also run the CDN-only baseline (P2P off) for a side-by-side report")
	p2p := fs.Bool("p2p", true, "P2P on; --p2p=false runs only the CDN-only baseline")
	// Flags may follow the scenario path: pull positional arguments out.
	var paths, rest []string
	for k := 0; k < len(args); k++ {
		a := args[k]
		switch {
		case !strings.HasPrefix(a, "-"):
			paths = append(paths, a)
		default:
			rest = append(rest, a)
			if !strings.Contains(a, "=") && (a == "--out" || a == "-out" || a == "--seed" || a == "-seed") && k+1 < len(args) {
				rest = append(rest, args[k+1])
				k++
			}
		}
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if len(paths) != 1 {
		fs.Usage()
		return usagef("want exactly one scenario file")
	}
	sc, err := sim.Load(paths[0])
	if err != nil {
		return err
	}
	if *seed >= 0 {
		sc.Seed = uint64(*seed)
	}
	if *out == "" {
		*out = filepath.Join("sim-out", sc.Name)
	}
	rep := &sim.Report{Scenario: sc}
	start := time.Now()
	if rep.On, err = sim.Run(ctx, sc.WithP2P(*p2p)); err != nil {
		return fmt.Errorf("simulate %s: %w", sc.Name, err)
	}
	wallOn := time.Since(start)
	if *ab && *p2p {
		if rep.Off, err = sim.Run(ctx, sc.WithP2P(false)); err != nil {
			return fmt.Errorf("simulate %s without P2P: %w", sc.Name, err)
		}
	}
	if err := rep.WriteFiles(*out); err != nil {
		return err
	}
	if err := rep.WriteSummary(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wall time %v (P2P run %v); report in %s\n", time.Since(start).Round(time.Millisecond), wallOn.Round(time.Millisecond), *out)
	return nil
}
