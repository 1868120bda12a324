package main

import (
	"context"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/demo"
)

func init() {
	register("demo", "run every role in one process on loopback and show what happened", runDemo)
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[--size SIZE] [--peers N] [--dir DIR] [--linger=false]", stderr)
	size := fs.String("size", "32MiB", "size of the generated sample")
	dir := fs.String("dir", "", "working directory (default: a temporary directory, removed afterwards)")
	linger := fs.String("linger", "auto", "afterwards keep the swarm and peer 0's gateway up until Ctrl-C: true, false, or auto (only when stdout is a terminal)")
	peers := fs.Int("peers", 20, "number of peers in the swarm")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	n, err := core.ParseSize(*size)
	if err != nil {
		return usagef("--size: %v", err)
	}
	if *peers < 1 {
		return usagef("--peers: want at least 1")
	}
	var stay bool
	switch *linger {
	case "auto":
		f, ok := stdout.(*os.File)
		stay = ok && term.IsTerminal(int(f.Fd()))
	case "true", "1":
		stay = true
	case "false", "0":
	default:
		return usagef("--linger: %q: want true, false or auto", *linger)
	}
	return demo.Run(ctx, demo.Config{Dir: *dir, Size: n, Peers: *peers, Out: stdout, Linger: stay})
}
