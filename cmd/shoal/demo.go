package main

import (
	"context"
	"io"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/demo"
)

func init() {
	register("demo", "run every role in one process on loopback and show what happened", runDemo)
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[--size SIZE] [--dir DIR] [--linger]", stderr)
	size := fs.String("size", "32MiB", "size of the generated sample")
	dir := fs.String("dir", "", "working directory (default: a temporary directory, removed afterwards)")
	linger := fs.Bool("linger", false, "keep the servers up until Ctrl-C")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	n, err := core.ParseSize(*size)
	if err != nil {
		return usagef("--size: %v", err)
	}
	return demo.Run(ctx, demo.Config{Dir: *dir, Size: n, Out: stdout, Linger: *linger})
}
