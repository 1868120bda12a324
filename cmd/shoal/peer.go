package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/swarm"
)

func init() {
	register("peer", "run the peer daemon: cache, swarms and the local HTTP gateway", runPeer)
}

func runPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("peer", "--tracker URL --origin URL --trust PUBKEY [--gateway 127.0.0.1:7171] [flags]", stderr)
	rf := addReceiverFlags(fs, "cache directory (chunks, manifests, the peer's identity key)", "tracker URL, or comma-separated URLs of replicas tried in turn (on an error or timeout the next; the one that answers is kept)",
		"/ip4/0.0.0.0/tcp/4001,/ip4/0.0.0.0/udp/4001/quic-v1")
	gateway := fs.String("gateway", "127.0.0.1:7171", "local HTTP gateway address (/c/ID/PATH, /live/CHANNEL/…, /api/status, /metrics)")
	cacheSize := fs.String("cache-size", "0", "chunk cache quota, e.g. 10GiB (0: unlimited); least recently used chunks go first")
	prefetch := fs.String("prefetch", "window", "what a read fetches beyond the bytes asked for: none, window (a read-ahead window following the reader) or all (every content joined, whole); a request may override it with ?prefetch=")
	readAhead := fs.String("read-ahead", "4MiB", "size of the read-ahead window of --prefetch window")
	gl := addGatewayLimitFlags(fs)
	statusOrigins := fs.String("status-origins", "", "web origins, comma-separated (e.g. https://ops.example.com), whose pages may read the gateway's /api/status and /metrics; * for any; default none (they tell what this machine watches). /c/ and /live/ are open to every origin")
	scrubRate := fs.String("scrub-rate", "8MiB/s", "how fast the cache is re-verified in the background, e.g. 8MiB/s; damaged chunks are removed (0: off; reads verify what they serve either way)")
	liveChannels := fs.Int("live-channels", agent.DefaultLiveChannels, "most live channels the gateway follows at once; with all of them being watched, a request for another is answered 503")
	liveIdle := fs.Duration("live-idle", agent.DefaultLiveIdle, "how long a live channel is still followed after its last gateway request (at least two target durations); then the peer stops polling it and leaves its segments' swarms")
	revPoll := fs.Duration("revocation-poll", agent.DefaultRevocationPoll, "how often each trusted key's revocation list is fetched from the origin (conditional GET, jittered ±10%); lists also spread between peers by gossip")
	af := addAuditFlags(fs)
	alf := addAccessLogFlags(fs)
	gatewayTokens := fs.Bool("gateway-tokens", false, "serve /c/ and /live/ only to requests with \"Authorization: Bearer TOKEN\", a token that admits them to the content or channel (checked against --trust, and this peer's tenant when it has a --token)")
	originRequests := fs.Int("origin-requests", swarm.DefaultOriginRequests, "most chunk requests to the origin in flight at once, across all swarms; failed ones back off exponentially (1s doubling to 30s, with jitter)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rf.origin == "" || (len(*rf.trust) == 0 && *rf.trustFile == "") || fs.NArg() != 0 {
		fs.Usage()
		return usagef("want --origin and --trust or --trust-file (and usually --tracker), no arguments")
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
	if pc.Gateway, err = gl.limits(); err != nil {
		return err
	}
	if pc.StatusOrigins, err = agent.ParseOrigins(*statusOrigins); err != nil {
		return usagef("--status-origins: %v", err)
	}
	if pc.ScrubRate, err = core.ParseRate(*scrubRate); err != nil {
		return usagef("--scrub-rate: %v", err)
	}
	if *liveChannels < 1 {
		return usagef("--live-channels %d: want at least 1", *liveChannels)
	}
	if *liveIdle <= 0 {
		return usagef("--live-idle %v: want a positive duration such as 30s", *liveIdle)
	}
	pc.LiveChannels, pc.LiveIdle = *liveChannels, *liveIdle
	if *originRequests <= 0 {
		return usagef("--origin-requests %d: want a positive number", *originRequests)
	}
	pc.OriginRequests = *originRequests
	if *revPoll <= 0 {
		return usagef("--revocation-poll %v: want a positive duration such as 60s", *revPoll)
	}
	pc.RevocationPoll = *revPoll
	pc.GatewayTokens = *gatewayTokens
	if pc.Logger, err = newLogger(fs, stderr); err != nil {
		return err
	}
	sink, closeAudit, err := af.open(pc.Logger)
	if err != nil {
		return err
	}
	defer closeAudit()
	pc.Audit = sink
	al, closeAccess, err := alf.open(pc.Logger)
	if err != nil {
		return err
	}
	defer closeAccess()
	pc.AccessLog = al
	return agent.RunDaemon(ctx, agent.DaemonConfig{Gateway: *gateway, PeerConfig: pc})
}

// gatewayLimitFlags are the flags of agent.GatewayLimits.
type gatewayLimitFlags struct {
	memory  *string
	stall   *time.Duration
	clients *int
}

func addGatewayLimitFlags(fs *flag.FlagSet) gatewayLimitFlags {
	return gatewayLimitFlags{
		memory: fs.String("gateway-memory", "64MiB", "budget of the gateway's response buffers across all responses; "+
			"a response holds at most 1MiB of it whatever the chunk size, and one that finds it spent for 5s is answered 503 with Retry-After"),
		stall: fs.Duration("gateway-stall-timeout", agent.DefaultGatewayStallTimeout,
			"cut a gateway response whose client takes no bytes for this long"),
		clients: fs.Int("gateway-client-streams", agent.DefaultGatewayClientStreams,
			"content and live responses in progress per client IP address; beyond it the gateway answers 429"),
	}
}

func (g gatewayLimitFlags) limits() (agent.GatewayLimits, error) {
	mem, err := core.ParseSize(*g.memory)
	if err != nil || mem < 1<<20 {
		return agent.GatewayLimits{}, usagef("--gateway-memory %q: want a size of at least 1MiB, such as 64MiB", *g.memory)
	}
	if *g.stall <= 0 {
		return agent.GatewayLimits{}, usagef("--gateway-stall-timeout %v: want a positive duration such as 30s", *g.stall)
	}
	if *g.clients <= 0 {
		return agent.GatewayLimits{}, usagef("--gateway-client-streams %d: want a positive number such as 64", *g.clients)
	}
	return agent.GatewayLimits{Memory: mem, StallTimeout: *g.stall, ClientStreams: *g.clients}, nil
}
