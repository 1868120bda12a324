package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/core"
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
	tracker := fs.String("tracker", "", "tracker URL: fetch from the swarm (the origin fills gaps) and seed while downloading")
	seedFor := fs.Duration("seed-for", 0, "with --tracker: keep seeding this long after the download (e.g. 10m)")
	listen := fs.String("listen", "/ip4/0.0.0.0/tcp/0,/ip4/0.0.0.0/udp/0/quic-v1", "with --tracker: comma-separated libp2p listen multiaddrs")
	upload := fs.String("upload-limit", "0", "with --tracker: upload cap to peers, e.g. 20Mbit (0: unlimited)")
	region := fs.String("region", "", "with --tracker: region label for the tracker")
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
	up, err := core.ParseRate(*upload)
	if err != nil {
		return usagef("--upload-limit: %v", err)
	}
	var prog io.Writer = stderr
	if *quiet {
		prog = nil
	}
	res, err := agent.Get(ctx, agent.GetConfig{
		Origin: *origin, Trust: key, Target: fs.Arg(0), Out: *out,
		CacheDir: *cacheDir, Parallel: *parallel, Progress: prog,
		Tracker: *tracker, SeedFor: *seedFor,
		Swarm:  agent.PeerConfig{Listen: strings.Split(*listen, ","), UploadLimit: up, Region: *region},
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d files, %s verified (%s from cache)\n", res.Out, res.Files, agent.HumanBytes(res.Bytes), agent.HumanBytes(res.FromCache))
	if *tracker != "" {
		fmt.Fprintf(stdout, "swarm: %s from peers, %s from origin, %s uploaded\n", agent.HumanBytes(res.FromPeers), agent.HumanBytes(res.FromOrigin), agent.HumanBytes(res.Uploaded))
	}
	return nil
}
