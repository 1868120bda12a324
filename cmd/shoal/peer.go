package main

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

func init() {
	register("peer", "run the peer daemon: cache, swarms and the local HTTP gateway", runPeer)
}

func runPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("peer", "--tracker URL --origin URL --trust PUBKEY [--gateway 127.0.0.1:7171] [flags]", stderr)
	cacheDir := fs.String("cache", agent.DefaultCacheDir(), "cache directory (chunks, manifests, the peer's identity key)")
	tracker := fs.String("tracker", "", "tracker URL")
	origin := fs.String("origin", "", "origin or CDN URL of the layout root (the fallback)")
	trust := fs.String("trust", "", "publisher public key manifests must be signed by")
	gateway := fs.String("gateway", "127.0.0.1:7171", "local HTTP gateway address (/c/ID/PATH, /api/status, /metrics)")
	listen := fs.String("listen", "/ip4/0.0.0.0/tcp/4001,/ip4/0.0.0.0/udp/4001/quic-v1", "comma-separated libp2p listen multiaddrs (TCP and QUIC)")
	upload := fs.String("upload-limit", "0", "upload cap to peers, e.g. 20Mbit or 5MB/s (0: unlimited)")
	cacheSize := fs.String("cache-size", "0", "chunk cache quota, e.g. 10GiB (0: unlimited); least recently used chunks go first")
	region := fs.String("region", "", "region label; the tracker prefers peers of the same region")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *origin == "" || *trust == "" || fs.NArg() != 0 {
		fs.Usage()
		return usagef("want --origin and --trust (and usually --tracker), no arguments")
	}
	key, err := manifest.ParsePublicKey(*trust)
	if err != nil {
		return usagef("--trust: %v", err)
	}
	up, err := core.ParseRate(*upload)
	if err != nil {
		return usagef("--upload-limit: %v", err)
	}
	quota, err := core.ParseSize(*cacheSize)
	if err != nil {
		return usagef("--cache-size: %v", err)
	}
	return agent.RunDaemon(ctx, agent.DaemonConfig{
		Gateway: *gateway,
		PeerConfig: agent.PeerConfig{
			CacheDir: *cacheDir, Tracker: *tracker, Origin: *origin, Trust: key,
			Listen: strings.Split(*listen, ","), UploadLimit: up, CacheSize: quota, Region: *region,
			Logger: slog.New(slog.NewTextHandler(stderr, nil)),
		},
	})
}
