package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shoal-cdn/shoal/token"
	"github.com/shoal-cdn/shoal/tracker"
)

func init() {
	register("tracker", "run a tracker: peers announce content and learn each other", runTracker)
}

func runTracker(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("tracker", "[--listen ADDR] [--redis URL] [--interval DUR] [--max-peers N] [--admin-token T] [--origin URL] [--operator-key PUB --policy FILE] [limits…]", stderr)
	listen := fs.String("listen", tracker.DefaultListen, "TCP address to serve announces, /api/swarms and /metrics on")
	interval := fs.Duration("interval", tracker.DefaultInterval, "re-announce interval handed to peers (jittered ±10%); silent peers expire after 3×")
	maxPeers := fs.Int("max-peers", tracker.DefaultMaxPeers, "most peers returned per announce")
	af := addAuditFlags(fs)
	alf := addAccessLogFlags(fs)
	reportThreshold := fs.Int("report-threshold", tracker.DefaultReportThreshold, "distinct reporters (from distinct /24 or /48 networks) whose reports of bad chunks stop a peer being handed out")
	reportHalfLife := fs.Duration("report-half-life", tracker.DefaultReportHalfLife, "how long a report of a bad chunk takes to count half")
	adminToken := fs.String("admin-token", "", "bearer token that GET /api/swarms and PUT /api/policy (shoal policy push) require; empty disables both (prefer the env twin: a flag shows in ps)")
	operatorKeys := &keyList{}
	fs.Var(operatorKeys, "operator-key", "operator public keys (shoal keygen) whose signed policies the tracker accepts and hands out to peers: comma-separated, repeatable; without it the tracker serves no policy")
	policyFile := fs.String("policy", "", "signed policy file (shoal policy sign) to hand out from the start, taken again whenever it changes, unless the policy held is as new (needs --operator-key)")
	maxPolicyWaiters := fs.Int("max-policy-waiters", tracker.DefaultMaxPolicyWaiters, "policy long polls (GET /policy?after=) held at once, about 19 KiB of memory each; one more is refused with 503 and Retry-After (0: no limit)")
	trustForwarded := fs.Bool("trust-forwarded", false, "take the client address from the last X-Forwarded-For entry (only behind a reverse proxy that sets it)")
	clockSkew := fs.Duration("clock-skew", tracker.DefaultClockSkew, "how far an announce's signing time may be from the tracker's clock")
	trust := &keyList{}
	fs.Var(trust, "trust", "publisher public keys whose access tokens (shoal token issue) the tracker requires before it accepts an announce or returns a peer: comma-separated, repeatable; without it the tracker is open (no token, one tenant)")
	origin := fs.String("origin", "", "origin URL to fetch and verify manifests from, for token scopes by name and regions (empty: none)")
	ratePerIP := fs.Float64("rate-per-ip", tracker.DefaultRatePerIP, "announces per second from one client address (0: no limit)")
	burstPerIP := fs.Int("burst-per-ip", tracker.DefaultBurstPerIP, "announces one client address may send at once")
	ratePerPrefix := fs.Float64("rate-per-prefix", tracker.DefaultRatePerPrefix, "announces per second from one /24 (IPv4) or /48 (IPv6) (0: no limit)")
	burstPerPrefix := fs.Int("burst-per-prefix", tracker.DefaultBurstPerPrefix, "announces one /24 or /48 may send at once")
	maxSwarmPeers := fs.Int("max-swarm-peers", tracker.DefaultMaxSwarmPeers, "peers one swarm lists; more are answered but not listed (0: no limit)")
	maxTenantSwarms := fs.Int("max-tenant-swarms", tracker.DefaultMaxTenantSwarms, "swarms one tenant may open (0: no limit)")
	maxSwarms := fs.Int("max-swarms", tracker.DefaultMaxSwarms, "swarms in all (0: no limit)")
	maxPeersTotal := fs.Int("max-peers-total", tracker.DefaultMaxPeersTotal, "peer entries over all swarms, about 1 KiB each (0: no limit)")
	maxInFlight := fs.Int("max-inflight", tracker.DefaultMaxInFlight, "announces handled at once; one more waits --queue-wait for a slot, then is refused with 503 and Retry-After (0: no limit)")
	queueWait := fs.Duration("queue-wait", tracker.DefaultQueueWait, "longest an announce waits for a slot before the tracker counts itself overloaded and refuses it")
	overloadRetry := fs.Duration("overload-retry-after", tracker.DefaultOverloadRetryAfter, "Retry-After of an overload refusal (jittered up to +50%); peers wait at least that long")
	tokenCache := fs.Int("token-cache", tracker.DefaultTokenCache, "tokens whose signatures verified, remembered so a re-announce skips the Ed25519 verification (expiry, trust and scope are checked every time; 0: no cache)")
	relays := fs.String("relays", "", "the relays (shoal relay's multiaddrs, /ip4/IP/tcp/PORT/p2p/ID, comma-separated) whose circuit addresses peers may announce and the tracker hands out; a circuit through any other relay is dropped (a relay on the tracker's loopback excepted, for peers on it)")
	redisURL := fs.String("redis", "", "keep swarms in the Redis at this URL instead of in memory, so any number of trackers on it serve the same swarms: redis://[user:pass@]host:port[/db], rediss:// (TLS), ?master_name=NAME&addr=… (Sentinel), redis+cluster://host:port[?addr=…] (Cluster); prefer the env twin when it holds a password")
	redisPrefix := fs.String("redis-prefix", tracker.DefaultRedisPrefix, "start of every key the tracker writes in Redis, so deployments can share one")
	sessionTTL := fs.Duration("session-ttl", tracker.DefaultSessionTTL, "lifetime of the session tickets handed to peers whose signed announce verified; until it ends a peer MACs its announces instead of signing them (0: tickets off)")
	sessionKeyFile := fs.String("session-key-file", "", "file holding the secret (at least 32 bytes) session tickets derive from; replicas behind one load balancer share it (empty: random at start, so a restart voids tickets)")
	maxPerPrefix := fs.Int("max-per-prefix", tracker.DefaultMaxPerPrefix, "most peers from one /24 or /48 in one returned peer set (0: no limit)")
	tf := addTelemetryFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *interval <= 0 {
		return usagef("--interval must be positive, got %v", *interval)
	}
	if *maxPeers <= 0 {
		return usagef("--max-peers must be positive, got %d", *maxPeers)
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
	al, closeAccess, err := alf.open(log)
	if err != nil {
		return err
	}
	defer closeAccess()
	if *reportThreshold < 2 {
		return usagef("--report-threshold must be at least 2 (one report never excludes a peer), got %d", *reportThreshold)
	}
	if *reportHalfLife <= 0 {
		return usagef("--report-half-life must be positive, got %v", *reportHalfLife)
	}
	if *queueWait <= 0 {
		return usagef("--queue-wait must be positive, got %v", *queueWait)
	}
	if *overloadRetry < time.Second {
		return usagef("--overload-retry-after must be at least 1s (Retry-After counts whole seconds), got %v", *overloadRetry)
	}
	if *sessionTTL < 0 {
		return usagef("--session-ttl must be 0 (tickets off) or positive, got %v", *sessionTTL)
	}
	relaySet, err := tracker.ParseRelays(commaList(*relays))
	if err != nil {
		return usagef("--relays: %v", err)
	}
	var sessionKey []byte
	if *sessionKeyFile != "" {
		if sessionKey, err = readSessionKey(*sessionKeyFile); err != nil {
			return usagef("--session-key-file: %v", err)
		}
	}
	if *clockSkew <= 0 {
		return usagef("--clock-skew must be positive, got %v", *clockSkew)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"rate-per-ip", *ratePerIP}, {"rate-per-prefix", *ratePerPrefix},
		{"burst-per-ip", float64(*burstPerIP)}, {"burst-per-prefix", float64(*burstPerPrefix)},
		{"max-swarm-peers", float64(*maxSwarmPeers)}, {"max-tenant-swarms", float64(*maxTenantSwarms)},
		{"max-swarms", float64(*maxSwarms)}, {"max-peers-total", float64(*maxPeersTotal)}, {"max-per-prefix", float64(*maxPerPrefix)},
		{"max-inflight", float64(*maxInFlight)}, {"token-cache", float64(*tokenCache)}, {"max-policy-waiters", float64(*maxPolicyWaiters)},
	} {
		if f.v < 0 {
			return usagef("--%s must be 0 (no limit) or positive, got %v", f.name, f.v)
		}
	}
	// On the command line 0 means no limit; in tracker.Config a negative
	// value does (0 takes the default).
	noLimit := func(v int) int {
		if v == 0 {
			return -1
		}
		return v
	}
	noRate := func(v float64) float64 {
		if v == 0 {
			return -1
		}
		return v
	}
	cfg := tracker.Config{
		Listen:             *listen,
		Redis:              *redisURL,
		RedisPrefix:        *redisPrefix,
		Interval:           *interval,
		MaxPeers:           *maxPeers,
		AdminToken:         *adminToken,
		TrustForwarded:     *trustForwarded,
		ClockSkew:          *clockSkew,
		SessionTTL:         *sessionTTL,
		Relays:             relaySet,
		SessionKey:         sessionKey,
		RatePerIP:          noRate(*ratePerIP),
		BurstPerIP:         max(*burstPerIP, 1),
		RatePerPrefix:      noRate(*ratePerPrefix),
		BurstPerPrefix:     max(*burstPerPrefix, 1),
		MaxSwarmPeers:      noLimit(*maxSwarmPeers),
		MaxTenantSwarms:    noLimit(*maxTenantSwarms),
		MaxSwarms:          noLimit(*maxSwarms),
		MaxPeersTotal:      noLimit(*maxPeersTotal),
		MaxPerPrefix:       noLimit(*maxPerPrefix),
		MaxInFlight:        noLimit(*maxInFlight),
		QueueWait:          *queueWait,
		OverloadRetryAfter: *overloadRetry,
		Logger:             log,
		Audit:              sink,
		AccessLog:          al,
		ReportThreshold:    *reportThreshold,
		ReportHalfLife:     *reportHalfLife,
		OperatorKeys:       *operatorKeys,
		PolicyFile:         *policyFile,
		MaxPolicyWaiters:   noLimit(*maxPolicyWaiters),
	}
	if *policyFile != "" && len(*operatorKeys) == 0 {
		return usagef("--policy needs --operator-key: the keys the policy must be signed by")
	}
	if cfg.Telemetry, err = tf.config(); err != nil {
		return err
	}
	if *origin != "" {
		l, err := tracker.NewManifestLookup(tracker.ManifestLookupConfig{Origin: *origin})
		if err != nil {
			return usagef("--origin: %v", err)
		}
		cfg.Manifests = l
	}
	if len(*trust) > 0 {
		v := token.NewVerifier(*trust, nil).WithCache(*tokenCache)
		cfg.Authorize = tracker.TokenAuthorizer(v)
		cfg.Regrant = tracker.TokenRegrant(v)
		cfg.TokenTenant = tracker.TokenTenantOf(v)
		if cfg.Manifests == nil {
			log.Warn("--trust without --origin: the tracker checks content- and channel-scoped tokens only, and leaves residency and publisher ownership to the peers")
		}
	}
	return tracker.Run(ctx, cfg)
}

// readSessionKey reads a tracker's session secret: the file's bytes, at
// least tracker.MinSessionKeyLen of them (a trailing newline is part of it;
// every replica reads the same file).
func readSessionKey(path string) ([]byte, error) {
	k, err := os.ReadFile(path)
	if err != nil {
		return nil, err // names the file
	}
	if len(k) < tracker.MinSessionKeyLen {
		return nil, fmt.Errorf("%s holds %d bytes, want at least %d (say: head -c 32 /dev/urandom > %s)", path, len(k), tracker.MinSessionKeyLen, path)
	}
	return k, nil
}
