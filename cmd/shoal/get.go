package main

import (
	"context"
	"fmt"
	"io"

	"github.com/shoal-cdn/shoal/agent"
)

func init() {
	register("get", "fetch and verify a content (or one file of it)", runGet)
}

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("get", "--origin URL --trust PUBKEY [-o OUT] CONTENT_ID[/PATH]", stderr)
	quieterLogs(fs)
	rf := addReceiverFlags(fs, "cache directory; verified chunks stay here so a rerun resumes",
		"tracker URL, or comma-separated URLs of replicas tried in turn: fetch from the swarm (the origin fills gaps) and seed while downloading",
		"/ip4/0.0.0.0/tcp/0,/ip4/0.0.0.0/udp/0/quic-v1")
	out := fs.String("o", "", "output file or directory (default: the file's name, or the content name)")
	parallel := fs.Int("parallel", 8, "chunk requests in flight")
	quiet := fs.Bool("quiet", false, "no progress output")
	af := addAuditFlags(fs)
	seedFor := fs.Duration("seed-for", 0, "with --tracker: keep seeding this long after the download (e.g. 10m)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rf.origin == "" || (len(*rf.trust) == 0 && *rf.trustFile == "") || fs.NArg() != 1 {
		fs.Usage()
		return usagef("want --origin, --trust (or --trust-file) and one CONTENT_ID[/PATH]")
	}
	pc, err := rf.peerConfig()
	if err != nil {
		return err
	}
	if err := loadTrustFileOnce(&pc); err != nil {
		return err
	}
	log, err := newLogger(fs, stderr)
	if err != nil {
		return err
	}
	sink, closeAudit, err := af.open(log)
	if err != nil {
		return err
	}
	defer closeAudit()
	pc.Audit = sink
	var prog io.Writer = stderr
	if *quiet {
		prog = nil
	}
	res, err := agent.Get(ctx, agent.GetConfig{
		Origin: pc.Origin, Trust: pc.Trust, Target: fs.Arg(0), Out: *out,
		CacheDir: pc.CacheDir, Parallel: *parallel, Progress: prog,
		Tracker: pc.Tracker, SeedFor: *seedFor, Swarm: pc,
		Logger: log,
	})
	if err != nil {
		return err
	}
	if res.Via != "" {
		fmt.Fprintf(stdout, "%s: %d files, %s verified (through the peer daemon at %s, which shares the cache)\n", res.Out, res.Files, agent.HumanBytes(res.Bytes), res.Via)
		return nil
	}
	fmt.Fprintf(stdout, "%s: %d files, %s verified (%s from cache)\n", res.Out, res.Files, agent.HumanBytes(res.Bytes), agent.HumanBytes(res.FromCache))
	if pc.Tracker != "" {
		fmt.Fprintf(stdout, "swarm: %s from peers, %s from origin, %s uploaded (bytes: peers=%d origin=%d uploaded=%d)\n",
			agent.HumanBytes(res.FromPeers), agent.HumanBytes(res.FromOrigin), agent.HumanBytes(res.Uploaded), res.FromPeers, res.FromOrigin, res.Uploaded)
	}
	return nil
}
