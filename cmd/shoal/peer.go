package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/swarm"
)

func init() {
	register("peer", "run the peer daemon: cache, swarms and the local HTTP gateway", runPeer)
}

func runPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("peer", "--tracker URL --origin URL --trust PUBKEY [--gateway 127.0.0.1:7171] [flags]", stderr)
	rf := addReceiverFlags(fs, "cache directory (chunks, manifests, the peer's identity key)", "tracker URL",
		"/ip4/0.0.0.0/tcp/4001,/ip4/0.0.0.0/udp/4001/quic-v1")
	gateway := fs.String("gateway", "127.0.0.1:7171", "local HTTP gateway address (/c/ID/PATH, /live/CHANNEL/…, /api/status, /metrics)")
	cacheSize := fs.String("cache-size", "0", "chunk cache quota, e.g. 10GiB (0: unlimited); least recently used chunks go first")
	prefetch := fs.String("prefetch", "window", "what a read fetches beyond the bytes asked for: none, window (a read-ahead window following the reader) or all (every content joined, whole); a request may override it with ?prefetch=")
	readAhead := fs.String("read-ahead", "4MiB", "size of the read-ahead window of --prefetch window")
	originRequests := fs.Int("origin-requests", swarm.DefaultOriginRequests, "most chunk requests to the origin in flight at once, across all swarms; failed ones back off exponentially (1s doubling to 30s, with jitter)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rf.origin == "" || *rf.trust == "" || fs.NArg() != 0 {
		fs.Usage()
		return usagef("want --origin and --trust (and usually --tracker), no arguments")
	}
	pc, err := rf.peerConfig()
	if err != nil {
		return err
	}
	if pc.Prefetch, err = agent.ParsePrefetch(*prefetch); err != nil {
		return usagef("--prefetch: %v", err)
	}
	if pc.ReadAhead, err = core.ParseSize(*readAhead); err != nil || pc.ReadAhead <= 0 {
		return usagef("--read-ahead %q: want a positive size such as 4MiB", *readAhead)
	}
	if pc.CacheSize, err = core.ParseSize(*cacheSize); err != nil {
		return usagef("--cache-size: %v", err)
	}
	if *originRequests <= 0 {
		return usagef("--origin-requests %d: want a positive number", *originRequests)
	}
	pc.OriginRequests = *originRequests
	pc.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	return agent.RunDaemon(ctx, agent.DaemonConfig{Gateway: *gateway, PeerConfig: pc})
}
