package main

import (
	"context"
	"encoding/json"
	"io"

	"github.com/shoal-cdn/shoal/buildinfo"
)

func init() {
	register("version", "print the version, revision, build date, Go version and key module versions", runVersion)
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "[--json]", stderr)
	asJSON := fs.Bool("json", false, "print one JSON object instead of lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	in := buildinfo.Get()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	return in.Write(stdout)
}
