package tracker

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// Defaults of Config.
const (
	DefaultListen   = "127.0.0.1:7070"
	DefaultInterval = policy.AnnounceInterval // what the simulator's peers assume too
	DefaultMaxPeers = 50
)

// Config configures a tracker Server. Zero fields take the defaults given.
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
	// Audit receives security events: joins and leaves per swarm, refused
	// announces, reports and exclusions (nil: audit.Discard). An
	// audit.Writer is also registered on /metrics.
	Audit audit.Sink
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
	if c.Clock == nil {
		c.Clock = core.RealClock{}
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Audit = audit.OrDiscard(c.Audit)
	if c.ReportThreshold < 2 { // one report must never exclude anyone
		c.ReportThreshold = DefaultReportThreshold
	}
	if c.ReportHalfLife <= 0 {
		c.ReportHalfLife = DefaultReportHalfLife
	}
	if c.MaxOffenders <= 0 {
		c.MaxOffenders = DefaultMaxOffenders
	}
	if c.ReportsPerMinute <= 0 {
		c.ReportsPerMinute = DefaultReportsPerMinute
	}
	return c
}
