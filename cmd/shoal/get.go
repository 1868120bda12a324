package main

import (
	"context"
	"fmt"
	"io"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/manifest"
)

func init() {
	register("get", "fetch and verify a content (or one file of it)", runGet)
}

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("get", "--origin URL --trust PUBKEY [-o OUT] CONTENT_ID[/PATH]", stderr)
	origin := fs.String("origin", "", "origin or CDN URL of the layout root")
	trust := fs.String("trust", "", "publisher public key (printed by shoal keygen) the manifest must be signed by")
	out := fs.String("o", "", "output file or directory (default: the file's name, or the content name)")
	cacheDir := fs.String("cache", agent.DefaultCacheDir(), "cache directory; verified chunks stay here so a rerun resumes")
	parallel := fs.Int("parallel", 8, "chunk requests in flight")
	quiet := fs.Bool("quiet", false, "no progress output")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *origin == "" || *trust == "" || fs.NArg() != 1 {
		fs.Usage()
		return usagef("want --origin, --trust and one CONTENT_ID[/PATH]")
	}
	key, err := manifest.ParsePublicKey(*trust)
	if err != nil {
		return usagef("--trust: %v", err)
	}
	var prog io.Writer = stderr
	if *quiet {
		prog = nil
	}
	res, err := agent.Get(ctx, agent.GetConfig{
		Origin: *origin, Trust: key, Target: fs.Arg(0), Out: *out,
		CacheDir: *cacheDir, Parallel: *parallel, Progress: prog,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d files, %s verified (%s from cache)\n", res.Out, res.Files, agent.HumanBytes(res.Bytes), agent.HumanBytes(res.FromCache))
	return nil
}
