package tracker

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/shoal-cdn/shoal/accesslog"
	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// Defaults of Config.
const (
	DefaultListen   = "127.0.0.1:7070"
	DefaultInterval = policy.AnnounceInterval // what the simulator's peers assume too
	DefaultMaxPeers = 50

	// DefaultClockSkew is how far an announce's signing time may be from the
	// tracker's: wide enough for unsynchronised consumer clocks, short
	// enough that a captured announce is soon useless.
	DefaultClockSkew = 2 * time.Minute
	// Announce rate limits, in announces per second and burst. A peer
	// announces each content every 30 s, so one address holding 100
	// contents stays under the per-IP rate; a /24 or /48 (an office, a
	// campus, a cloud subnet) gets 5 times that.
	DefaultRatePerIP       = 20.0
	DefaultBurstPerIP      = 100
	DefaultRatePerPrefix   = 100.0
	DefaultBurstPerPrefix  = 500
	DefaultRateTableSize   = 100_000 // limiters kept per table (IPs, prefixes), least recently used dropped
	DefaultMaxSwarmPeers   = 20_000  // peers listed per swarm
	DefaultMaxTenantSwarms = 10_000  // swarms per tenant
	DefaultMaxSwarms       = 50_000  // swarms in all
	DefaultMaxPeersTotal   = 250_000 // peer entries in all (about 1 KiB each)
	// DefaultMaxPerPrefix is the most peers from one /24 (IPv4) or /48 (IPv6)
	// in one returned peer set, so one host faking identities gets a few
	// slots, not all.
	DefaultMaxPerPrefix = 4
	// DefaultAdminPageSize and MaxAdminPageSize bound one page of /api/swarms.
	DefaultAdminPageSize = 100
	MaxAdminPageSize     = 1000
	// DefaultStoppedMemory is how many stopped peers the tracker remembers
	// (for the clock skew window) so that replaying one of their earlier
	// announces cannot list them again.
	DefaultStoppedMemory = 100_000
	// DefaultMaxInFlight is how many announces the tracker works on at
	// once; DefaultQueueWait how long one more waits for a slot before the
	// tracker counts itself saturated and refuses it with 503 and
	// DefaultOverloadRetryAfter (jittered up to +50%). A slot is held for
	// tens of microseconds, so 256 in flight is far past what 2 cores
	// serve in the wait: only a real overload is refused.
	DefaultMaxInFlight        = 256
	DefaultQueueWait          = 100 * time.Millisecond
	DefaultOverloadRetryAfter = 10 * time.Second
	// DefaultTokenCache is how many verified tokens the binary's token
	// check remembers (token.Verifier.WithCache): one per active peer and
	// content is the working set; 100,000 is a few tens of MB at most.
	DefaultTokenCache = 100_000
	// DefaultRedisPrefix and DefaultRedisSample: see Config.
	DefaultRedisPrefix = "shoal:"
	DefaultRedisSample = 128
	// DefaultRedisSampleReuse: see Config.RedisSampleReuse.
	DefaultRedisSampleReuse = time.Second
	// DefaultSessionTTL is the lifetime of a session ticket the binary
	// hands out (--session-ttl): a peer signs one announce per tracker per
	// lifetime, and a stolen ticket is useless after it.
	DefaultSessionTTL = time.Hour
	// DefaultMaxPolicyWaiters bounds the policy long polls held at once
	// (GET /policy?after=): each costs a goroutine and a connection's
	// buffers, 19 KiB of the tracker's RSS as measured, so 20,000 is some
	// 380 MB. Peers refused a poll still get the policy with their next
	// announce answer, and by gossip.
	DefaultMaxPolicyWaiters = 20_000
	// MinSessionKeyLen is the shortest session secret --session-key-file
	// accepts.
	MinSessionKeyLen = 32
)

// Config configures a tracker Server. Zero fields take the defaults given;
// for the limits, a negative value means no limit.
type Config struct {
	// Listen is the TCP address Run listens on (127.0.0.1:7070).
	Listen string
	// Interval is the re-announce interval handed to peers, before the ±10%
	// jitter applied per response (30 s).
	Interval time.Duration
	// MinInterval is the shortest interval peers are told to keep (Interval/2).
	MinInterval time.Duration
	// PeerTTL is how long a silent peer stays listed (3 × Interval): long
	// enough to survive two lost announces.
	PeerTTL time.Duration
	// MaxPeers caps the peers returned per announce, and is the default when
	// a request does not ask for a number (50).
	MaxPeers int

	// AllowUnsigned accepts announces without a signature, for simulations
	// and tests that name peers rather than hold keys. Anyone can then speak
	// for any peer ID: never set it on a tracker peers reach over a network.
	// Signed announces are verified either way.
	AllowUnsigned bool
	// ClockSkew is how far an announce's signing time may be from the
	// tracker's clock, either way (2 min).
	ClockSkew time.Duration
	// TrustForwarded takes the client address from the last entry of
	// X-Forwarded-For, for a tracker behind a reverse proxy that sets it.
	// Off, anyone could claim any address with that header.
	TrustForwarded bool

	// RatePerIP and BurstPerIP limit announces from one client address, per
	// second (20, burst 100); RatePerPrefix and BurstPerPrefix from one /24
	// or /48 (100, burst 500). RateTableSize bounds each table of limiters
	// (100,000; least recently used forgotten).
	RatePerIP, RatePerPrefix   float64
	BurstPerIP, BurstPerPrefix int
	RateTableSize              int
	// MaxSwarmPeers is how many peers one swarm lists (20,000): more are
	// answered but not listed. MaxTenantSwarms (10,000) and MaxSwarms
	// (50,000) cap the swarms one tenant and everyone may open;
	// MaxPeersTotal (250,000) caps peer entries over all swarms.
	MaxSwarmPeers, MaxTenantSwarms, MaxSwarms, MaxPeersTotal int
	// MaxPerPrefix is the most peers from one /24 or /48 in a returned peer
	// set (4). Peers on the tracker's own loopback are exempt: they are one
	// machine's tests or demo.
	MaxPerPrefix int
	// StoppedMemory is how many stopped peers are remembered to refuse
	// replays of their announces (100,000).
	StoppedMemory int
	// MaxInFlight bounds the announces handled at once (256; negative: no
	// bound). One more waits at most QueueWait (100 ms) for a slot, then is
	// refused unread with 503, a Retry-After header and interval_s in the
	// body: OverloadRetryAfter (10 s) plus up to 50% jitter.
	MaxInFlight        int
	QueueWait          time.Duration
	OverloadRetryAfter time.Duration

	// SessionTTL is the lifetime of the session tickets the tracker hands
	// out after a verified signature (session.go); a peer holding one MACs
	// its announces instead of signing them. 0 turns tickets off: none is
	// issued and MACed announces are refused. The binary's default is
	// DefaultSessionTTL.
	SessionTTL time.Duration
	// SessionKey is the secret tickets are derived from. Nil: 32 random
	// bytes at start, so a restart voids every ticket and peers sign once
	// more. Replicas behind one load balancer share it, so that a ticket
	// from one is good on another.
	SessionKey []byte

	// Authorize checks each announce's token and names the tenant and
	// regions it grants. Nil makes an open tracker: one tenant, "", and no
	// token needed. It judges every announce that carries a token; its
	// verdict is reused for later announces only when Regrant is set.
	Authorize Authorizer
	// Regrant, when set with Authorize, makes the session ticket of a
	// signed announce whose token was granted carry the Grant, so that the
	// peer's MACed announces send the grant instead of the token and are
	// not authorized again (session.go). It is called for every announce
	// taken on a ticket's grant, and may refuse it: a refusal is answered
	// as a refused token (403), its text sent to the peer. TokenRegrant
	// goes with TokenAuthorizer. Nil: tickets carry no grant and every
	// announce's token goes to Authorize.
	Regrant func(Grant) error
	// Manifests, when set, lets Authorize learn a content's name, publisher
	// and policy (AuthRequest.Manifest).
	Manifests *ManifestLookup
	// TokenTenant checks the token of a telemetry report when Authorize is
	// set (tokens required) and names its tenant; nil then refuses every
	// report.
	TokenTenant TokenTenant
	// Telemetry configures fleet telemetry (POST /telemetry, GET
	// /api/fleet, the shoal_fleet_* metrics).
	Telemetry TelemetryConfig
	// AdminToken is the bearer credential /api/swarms, PUT /api/policy and
	// /api/fleet require; empty disables all three.
	AdminToken string
	// OperatorKeys are the keys whose signed policies (package control) the
	// tracker accepts: from PUT /api/policy, PolicyFile, or another replica
	// through Redis. None: it serves no policy and refuses uploads.
	OperatorKeys []manifest.PublicKey
	// PolicyFile, when set, is a signed policy set at start, and again
	// whenever the file changes (checked every 2 s), unless the policy held
	// is as new. Open and Run honour it.
	PolicyFile string
	// PolicyWait is how long a policy long poll is held at most
	// (discovery.PolicyWait, 25 s, which is also the most).
	PolicyWait time.Duration
	// MaxPolicyWaiters bounds the policy long polls held at once
	// (DefaultMaxPolicyWaiters; negative: no bound); one more is refused
	// with 503 and a Retry-After of OverloadRetryAfter (jittered).
	MaxPolicyWaiters int
	// Clock drives expiry (core.RealClock).
	Clock core.Clock
	// Rand picks peer subsets and jitter. Nil seeds one randomly; tests pass
	// a seeded source so subsets are reproducible. The Server serialises its
	// use.
	Rand *rand.Rand
	// Logger receives the tracker's logs (slog.Default()).
	Logger *slog.Logger

	// ReportThreshold is how many distinct reporters, from distinct /24
	// (IPv4) or /48 (IPv6) networks, must report a peer's bad chunks before
	// the tracker stops handing it out (DefaultReportThreshold, 3). One
	// report never excludes anyone: values below 2 take the default.
	ReportThreshold int
	// ReportHalfLife is how long a report takes to count half
	// (DefaultReportHalfLife, 6 h).
	ReportHalfLife time.Duration
	// MaxOffenders bounds the peers reports are kept on
	// (DefaultMaxOffenders, 10000).
	MaxOffenders int
	// ReportsPerMinute caps the reports one address may send
	// (DefaultReportsPerMinute, 10).
	ReportsPerMinute int
	// Redis, when set, keeps the swarms in the Redis at this URL instead of
	// in memory, so any number of trackers on it serve the same swarms (see
	// docs/tracker-store.md for the URL forms: redis://, rediss://,
	// redis-sentinel-style ?master_name= and cluster ?addr= lists). Open and
	// Run honour it; New keeps state in memory.
	Redis string
	// RedisPrefix starts every key the tracker writes in Redis
	// (DefaultRedisPrefix, "shoal:"), so trackers of different deployments
	// can share one Redis.
	RedisPrefix string
	// RedisSample is how many entries one announce reads at most from a
	// Redis swarm to choose its peers from (DefaultRedisSample, 128; at
	// least 2 × MaxPeers): the locality and per-network choice is made
	// among them, so a sample never reads a whole large swarm.
	RedisSample int
	// RedisSampleReuse is how long a replica keeps reusing the entries it
	// last read from a Redis swarm for the swarm's other announces, so a
	// busy swarm's re-announces skip the read: its peer lists are at most
	// this stale, except that a peer joining, re-announcing or leaving
	// through this replica updates the kept entries at once; a read serves
	// at most 16 announces (DefaultRedisSampleReuse, 1 s; negative: read on
	// every announce).
	RedisSampleReuse time.Duration
	// Relays are the relays whose circuit addresses the tracker hands out
	// (ParseRelays; the binary's --relays). A circuit through any other
	// relay is dropped from the announce, except through a relay on the
	// tracker's own loopback, for peers on that loopback.
	Relays RelaySet

	// Audit receives security events: joins and leaves per swarm, refused
	// announces, reports and exclusions (nil: audit.Discard). An
	// audit.Writer is also registered on /metrics.
	Audit audit.Sink
	// AccessLog, when set, gets one line per HTTP request (probes
	// excepted); the caller opens and closes it.
	AccessLog *accesslog.Log
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.MinInterval <= 0 || c.MinInterval > c.Interval {
		c.MinInterval = c.Interval / 2
	}
	if c.PeerTTL <= 0 {
		c.PeerTTL = 3 * c.Interval
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = DefaultMaxPeers
	}
	if c.ClockSkew <= 0 {
		c.ClockSkew = DefaultClockSkew
	}
	deff := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defi := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	deff(&c.RatePerIP, DefaultRatePerIP)
	deff(&c.RatePerPrefix, DefaultRatePerPrefix)
	defi(&c.BurstPerIP, DefaultBurstPerIP)
	defi(&c.BurstPerPrefix, DefaultBurstPerPrefix)
	if c.RateTableSize <= 0 {
		c.RateTableSize = DefaultRateTableSize
	}
	defi(&c.MaxSwarmPeers, DefaultMaxSwarmPeers)
	defi(&c.MaxTenantSwarms, DefaultMaxTenantSwarms)
	defi(&c.MaxSwarms, DefaultMaxSwarms)
	defi(&c.MaxPeersTotal, DefaultMaxPeersTotal)
	defi(&c.MaxPerPrefix, DefaultMaxPerPrefix)
	if c.StoppedMemory <= 0 {
		c.StoppedMemory = DefaultStoppedMemory
	}
	defi(&c.MaxInFlight, DefaultMaxInFlight)
	if c.QueueWait <= 0 {
		c.QueueWait = DefaultQueueWait
	}
	if c.OverloadRetryAfter <= 0 {
		c.OverloadRetryAfter = DefaultOverloadRetryAfter
	}
	if c.PolicyWait <= 0 || c.PolicyWait > discovery.PolicyWait {
		c.PolicyWait = discovery.PolicyWait
	}
	defi(&c.MaxPolicyWaiters, DefaultMaxPolicyWaiters)
	if c.RedisPrefix == "" {
		c.RedisPrefix = DefaultRedisPrefix
	}
	if c.RedisSample <= 0 {
		c.RedisSample = DefaultRedisSample
	}
	c.RedisSample = max(c.RedisSample, 2*c.MaxPeers)
	if c.RedisSampleReuse == 0 {
		c.RedisSampleReuse = DefaultRedisSampleReuse
	}
	if c.SessionTTL < 0 {
		c.SessionTTL = 0
	}
	if len(c.SessionKey) == 0 {
		c.SessionKey = newSessionKey(MinSessionKeyLen)
	}
	c.Audit = audit.OrDiscard(c.Audit)
	if c.Clock == nil {
		c.Clock = core.RealClock{}
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ReportThreshold < 2 { // one report must never exclude anyone
		c.ReportThreshold = DefaultReportThreshold
	}
	if c.ReportHalfLife <= 0 {
		c.ReportHalfLife = DefaultReportHalfLife
	}
	if c.MaxOffenders <= 0 {
		c.MaxOffenders = DefaultMaxOffenders
	}
	c.Telemetry = c.Telemetry.withDefaults()
	if c.ReportsPerMinute <= 0 {
		c.ReportsPerMinute = DefaultReportsPerMinute
	}
	return c
}

// limits are the caps the stores enforce.
func (c Config) limits() limits {
	return limits{
		swarmPeers: c.MaxSwarmPeers, tenantSwarms: c.MaxTenantSwarms, swarms: c.MaxSwarms,
		peersTotal: c.MaxPeersTotal, perPrefix: c.MaxPerPrefix,
	}
}

// unlimited reports whether a limit was configured as "no limit".
func unlimited[T int | float64](v T) bool { return v < 0 }
