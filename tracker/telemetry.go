package tracker

import (
	"container/heap"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

// Fleet telemetry: peers post a summary every interval (POST /telemetry,
// telemetry_api.go); the tracker adds each to the counters of its label set
// (tenant, region, network, device, cohort), keeps each peer's latest
// gauges while it is present, and keeps a short history per label set in
// TelemetryBucket buckets for GET /api/fleet. With Redis, each replica
// aggregates what it receives: Prometheus sums the replicas' counters, and
// each replica's history holds its own share.

// Defaults of TelemetryConfig.
const (
	DefaultTelemetryMaxSeries = 1000
	DefaultTelemetryHistory   = time.Hour
	DefaultTelemetryMaxPeers  = 100_000
	// TelemetryBucket is the width of a history bucket.
	TelemetryBucket = 10 * time.Second
	// otherLabel names every label of the set that reports beyond
	// MaxSeries are folded into.
	otherLabel = "other"
)

// Default alert thresholds: the same numbers as the alert rules in
// deploy/prometheus/shoal-rules.yml.
const (
	DefaultOffloadMin          = 0.5 // ShoalOffloadLow
	DefaultStartupP95MaxS      = 4   // ShoalStartupP95High
	DefaultRebufferSPerHourMax = 30  // ShoalRebufferingHigh
	DefaultScarcityMax         = 0.2 // share of chunks missing with no peer holding them
)

// Thresholds are the alert thresholds the dashboard draws.
type Thresholds struct {
	// OffloadMin: the share of bytes from peers below which offload is low.
	OffloadMin float64 `json:"offload_min" yaml:"offload_min"`
	// StartupP95MaxS: the P95 start-up time, in seconds, above which
	// start-up is slow.
	StartupP95MaxS float64 `json:"startup_p95_max_s" yaml:"startup_p95_max_s"`
	// RebufferSPerHourMax: seconds stalled per hour watched above which
	// rebuffering is high.
	RebufferSPerHourMax float64 `json:"rebuffer_s_per_hour_max" yaml:"rebuffer_s_per_hour_max"`
	// ScarcityMax: the share of chunks missing with no peer holding them above which
	// the swarm is fragile.
	ScarcityMax float64 `json:"scarcity_max" yaml:"scarcity_max"`
}

// TelemetryConfig configures the tracker's fleet telemetry.
type TelemetryConfig struct {
	// Off refuses reports (404) and serves no /api/fleet.
	Off bool `yaml:"off"`
	// MaxSeries bounds the label sets kept (1000); reports of further sets
	// are added to one set whose labels are all "other".
	MaxSeries int `yaml:"max_series"`
	// History is how long the per-set history is kept (1 h), in
	// TelemetryBucket buckets.
	History time.Duration `yaml:"history"`
	// MaxPeers bounds the peers whose last report (sequence number and
	// gauges) is remembered (100,000); past it the one due to be forgotten
	// soonest goes first.
	MaxPeers int `yaml:"max_peers"`
	// Thresholds are served with /api/fleet for the dashboard to draw;
	// zero fields take the defaults above.
	Thresholds Thresholds `yaml:"thresholds"`
}

func (c TelemetryConfig) withDefaults() TelemetryConfig {
	if c.MaxSeries <= 0 {
		c.MaxSeries = DefaultTelemetryMaxSeries
	}
	if c.History < TelemetryBucket {
		c.History = DefaultTelemetryHistory
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = DefaultTelemetryMaxPeers
	}
	t := &c.Thresholds
	for _, f := range []struct {
		v *float64
		d float64
	}{{&t.OffloadMin, DefaultOffloadMin}, {&t.StartupP95MaxS, DefaultStartupP95MaxS},
		{&t.RebufferSPerHourMax, DefaultRebufferSPerHourMax}, {&t.ScarcityMax, DefaultScarcityMax}} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	return c
}

// seriesKey is one label set.
type seriesKey struct{ tenant, region, network, device, cohort string }

var otherKey = seriesKey{otherLabel, otherLabel, otherLabel, otherLabel, otherLabel}

// point is one history bucket of a label set. Its gauges are the set's as
// of the last report in the bucket.
type point struct {
	t                           int64 // bucket start, Unix seconds
	fromPeers, fromOrigin, upld int64
	startups                    [discovery.NumStartupBuckets]uint32
	stalls                      uint32
	stallS, watchS              float32
	peers                       uint32
	chunks, rare                int64
}

// series is one label set's counters, live gauges and history.
type series struct {
	key                         seriesKey
	fromPeers, fromOrigin, upld float64
	startups                    [discovery.NumStartupBuckets]uint64
	startupS                    float64
	stalls                      uint64
	stallS, watchS              float64
	live                        int   // peers present (reported within two of their intervals)
	chunks, rare                int64 // sums of the present peers' gauges
	hist                        []point
	last                        time.Time // last report
}

// fleetPeer is what the tracker remembers of one reporting peer.
type fleetPeer struct {
	id       string
	seq      int64
	last     time.Time // last accepted report
	interval time.Duration
	s        *series // the set its gauges count in while present
	present  bool
	chunks   int64
	rare     int64
	// next is when this entry changes: while present, when it stops being
	// (two intervals after its report); then, when it is forgotten (the
	// clock skew after its report, so a replay within the window is
	// still recognised by its sequence number).
	next, forget time.Time
	idx          int // in the fleet's heap
}

type peerHeap []*fleetPeer

func (h peerHeap) Len() int           { return len(h) }
func (h peerHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h peerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].idx = i; h[j].idx = j }
func (h *peerHeap) Push(x any)        { p := x.(*fleetPeer); p.idx = len(*h); *h = append(*h, p) }
func (h *peerHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

// fleet aggregates telemetry reports. Safe for concurrent use; its lock is
// never held with another of the Server's.
type fleet struct {
	cfg   TelemetryConfig
	skew  time.Duration
	clock core.Clock

	reports *prometheus.CounterVec // by result
	folded  prometheus.Counter

	mu     sync.Mutex
	series map[seriesKey]*series // guarded by mu; at most cfg.MaxSeries plus otherKey
	peers  map[string]*fleetPeer // guarded by mu; at most cfg.MaxPeers
	due    peerHeap              // guarded by mu: peers by next
	swept  time.Time             // guarded by mu: when idle series were last dropped
}

// Results of a telemetry report, for shoal_fleet_reports_total.
const (
	telemetryOK      = "ok"
	telemetryRepeat  = "repeat"  // seq not above the last accepted: ignored
	telemetryLimited = "limited" // too soon after the last, or the address's rate limit
	telemetryInvalid = "invalid" // malformed
	telemetryForged  = "forged"  // bad signature or MAC, stale
	telemetryRefused = "refused" // token refused or missing
	// telemetryOverloaded: refused unverified, the tracker saturated
	telemetryOverloaded = "overloaded"
)

func newFleet(cfg TelemetryConfig, skew time.Duration, clock core.Clock, reg prometheus.Registerer) *fleet {
	f := &fleet{
		cfg: cfg, skew: skew, clock: clock,
		series: map[seriesKey]*series{}, peers: map[string]*fleetPeer{},
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_fleet_reports_total", Help: "Telemetry reports by result (ok, repeat, limited, invalid, forged, refused, overloaded).",
		}, []string{"result"}),
		folded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_fleet_folded_reports_total", Help: "Telemetry reports counted under the label set \"other\": their own would pass --telemetry-max-series.",
		}),
	}
	for _, r := range []string{telemetryOK, telemetryRepeat, telemetryLimited, telemetryInvalid, telemetryForged, telemetryRefused, telemetryOverloaded} {
		f.reports.WithLabelValues(r)
	}
	reg.MustRegister(f.reports, f.folded, f)
	return f
}

// errTooSoon refuses a report sent less than half its interval after the
// peer's last accepted one.
type errTooSoon struct{ wait time.Duration }

func (e errTooSoon) Error() string {
	return fmt.Sprintf("telemetry too soon: one report per half interval; next in %v", e.wait.Round(time.Millisecond))
}

// add counts a verified report of tenant at now. It returns repeat=true for
// a report whose seq is not above the peer's last (ignored), or an
// errTooSoon.
func (f *fleet) add(tenant string, r *discovery.TelemetryReport, now time.Time) (repeat bool, err error) {
	iv := r.Interval()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advanceLocked(now)
	p := f.peers[r.Peer]
	if p != nil {
		if r.Seq <= p.seq {
			return true, nil
		}
		if wait := p.last.Add(min(iv, p.interval) / 2).Sub(now); wait > 0 {
			return false, errTooSoon{wait}
		}
	}
	key := seriesKey{tenant, r.Region, r.Network, r.Device, r.Cohort}
	s := f.series[key]
	if s == nil {
		if len(f.series) >= f.cfg.MaxSeries+1 || len(f.series) >= f.cfg.MaxSeries && f.series[otherKey] == nil {
			key = otherKey
			f.folded.Inc()
			s = f.series[key]
		}
		if s == nil {
			s = &series{key: key}
			f.series[key] = s
		}
	}
	if p == nil {
		if len(f.peers) >= f.cfg.MaxPeers {
			f.dropLocked(f.due[0])
		}
		p = &fleetPeer{id: r.Peer}
		f.peers[r.Peer] = p
		heap.Push(&f.due, p)
	}
	if p.present {
		p.s.live--
		p.s.chunks -= p.chunks
		p.s.rare -= p.rare
	}
	p.seq, p.last, p.interval, p.s, p.present = r.Seq, now, iv, s, true
	p.chunks, p.rare = r.Chunks, r.RareChunks
	p.next = now.Add(2 * iv)
	p.forget = now.Add(max(2*iv, f.skew))
	heap.Fix(&f.due, p.idx)
	s.live++
	s.chunks += p.chunks
	s.rare += p.rare

	s.fromPeers += float64(r.FromPeers)
	s.fromOrigin += float64(r.FromOrigin)
	s.upld += float64(r.Uploaded)
	for i, c := range r.Startups {
		s.startups[i] += uint64(c)
	}
	s.startupS += r.StartupS
	s.stalls += uint64(r.Stalls)
	s.stallS += r.StallS
	s.watchS += r.WatchS
	s.last = now

	t := bucketStart(now)
	if n := len(s.hist); n == 0 || s.hist[n-1].t != t {
		f.trimLocked(s, now)
		if len(s.hist) == cap(s.hist) {
			// Grow to at most the points History holds, never beyond.
			grown := make([]point, len(s.hist), min(max(2*cap(s.hist), 8), f.maxPoints()))
			s.hist = append(grown[:0], s.hist...)
		}
		s.hist = append(s.hist, point{t: t})
	}
	pt := &s.hist[len(s.hist)-1]
	pt.fromPeers += r.FromPeers
	pt.fromOrigin += r.FromOrigin
	pt.upld += r.Uploaded
	for i, c := range r.Startups {
		pt.startups[i] = satAdd32(pt.startups[i], c)
	}
	pt.stalls = satAdd32(pt.stalls, r.Stalls)
	pt.stallS += float32(r.StallS)
	pt.watchS += float32(r.WatchS)
	pt.peers, pt.chunks, pt.rare = uint32(s.live), s.chunks, s.rare
	return false, nil
}

func satAdd32(a uint32, b int64) uint32 {
	if v := int64(a) + b; v < 1<<32 {
		return uint32(v)
	}
	return 1<<32 - 1
}

func bucketStart(t time.Time) int64 {
	u := t.Unix()
	w := int64(TelemetryBucket / time.Second)
	return u - u%w
}

// maxPoints is the most history points a label set holds: one per bucket
// of History, and the bucket being filled.
func (f *fleet) maxPoints() int { return int(f.cfg.History/TelemetryBucket) + 2 }

// trimLocked drops s's history points older than History.
func (f *fleet) trimLocked(s *series, now time.Time) {
	oldest := bucketStart(now.Add(-f.cfg.History))
	k := 0
	for k < len(s.hist) && s.hist[k].t < oldest {
		k++
	}
	if k > 0 {
		s.hist = append(s.hist[:0], s.hist[k:]...)
	}
}

// dropLocked forgets p.
func (f *fleet) dropLocked(p *fleetPeer) {
	if p.present {
		p.s.live--
		p.s.chunks -= p.chunks
		p.s.rare -= p.rare
	}
	heap.Remove(&f.due, p.idx)
	delete(f.peers, p.id)
}

// advanceLocked ends the presence of peers silent for two intervals,
// forgets peers past their replay window, and, once a bucket, drops label
// sets with no peer present and no report within History.
func (f *fleet) advanceLocked(now time.Time) {
	for len(f.due) > 0 && !f.due[0].next.After(now) {
		p := f.due[0]
		if !p.present || !p.forget.After(now) {
			f.dropLocked(p)
			continue
		}
		p.present = false
		p.s.live--
		p.s.chunks -= p.chunks
		p.s.rare -= p.rare
		p.next = p.forget
		heap.Fix(&f.due, 0)
	}
	if now.Sub(f.swept) < TelemetryBucket {
		return
	}
	f.swept = now
	for k, s := range f.series {
		if s.live == 0 && now.Sub(s.last) > f.cfg.History {
			delete(f.series, k)
			continue
		}
		f.trimLocked(s, now)
	}
}

// Descriptions of the fleet metrics. Labels are the label set's.
var (
	fleetLabels     = []string{"tenant", "region", "network", "device", "cohort"}
	descFromPeers   = prometheus.NewDesc("shoal_fleet_from_peers_bytes_total", "Verified bytes peers received from other peers, as they reported.", fleetLabels, nil)
	descFromOrigin  = prometheus.NewDesc("shoal_fleet_from_origin_bytes_total", "Verified bytes peers received from the origin, as they reported.", fleetLabels, nil)
	descUploaded    = prometheus.NewDesc("shoal_fleet_uploaded_bytes_total", "Bytes peers sent to other peers, as they reported.", fleetLabels, nil)
	descStartups    = prometheus.NewDesc("shoal_fleet_startups", "Playback start-up times in seconds, as peers reported them.", fleetLabels, nil)
	descStalls      = prometheus.NewDesc("shoal_fleet_stalls_total", "Playback stalls peers reported.", fleetLabels, nil)
	descStallS      = prometheus.NewDesc("shoal_fleet_stall_seconds_total", "Seconds of playback stalled, as peers reported.", fleetLabels, nil)
	descWatchS      = prometheus.NewDesc("shoal_fleet_watch_seconds_total", "Seconds of media peers' gateways sent to players.", fleetLabels, nil)
	descPeers       = prometheus.NewDesc("shoal_fleet_peers", "Peers that reported within two of their intervals.", fleetLabels, nil)
	descChunks      = prometheus.NewDesc("shoal_fleet_chunks", "Chunks wanted or held by the present peers, summed over them.", fleetLabels, nil)
	descRare        = prometheus.NewDesc("shoal_fleet_rare_chunks", "Of shoal_fleet_chunks, those the peers miss and no connected peer holds (only the origin has them).", fleetLabels, nil)
	descSeries      = prometheus.NewDesc("shoal_fleet_series", "Label sets the tracker keeps telemetry for (at most --telemetry-max-series, plus \"other\").", nil, nil)
	fleetCollectors = []*prometheus.Desc{descFromPeers, descFromOrigin, descUploaded, descStartups, descStalls, descStallS, descWatchS, descPeers, descChunks, descRare, descSeries}
)

// Describe implements prometheus.Collector.
func (f *fleet) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range fleetCollectors {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one sample of each metric per
// label set.
func (f *fleet) Collect(ch chan<- prometheus.Metric) {
	type snap struct {
		series
		cum map[float64]uint64
		n   uint64
	}
	f.mu.Lock()
	f.advanceLocked(f.clock.Now())
	out := make([]snap, 0, len(f.series))
	for _, s := range f.series {
		sn := snap{series: *s, cum: make(map[float64]uint64, len(discovery.StartupBucketsS))}
		sn.hist = nil
		for i, b := range discovery.StartupBucketsS {
			sn.n += s.startups[i]
			sn.cum[b] = sn.n
		}
		sn.n += s.startups[discovery.NumStartupBuckets-1]
		out = append(out, sn)
	}
	f.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descSeries, prometheus.GaugeValue, float64(len(out)))
	for _, s := range out {
		l := []string{s.key.tenant, s.key.region, s.key.network, s.key.device, s.key.cohort}
		ch <- prometheus.MustNewConstMetric(descFromPeers, prometheus.CounterValue, s.fromPeers, l...)
		ch <- prometheus.MustNewConstMetric(descFromOrigin, prometheus.CounterValue, s.fromOrigin, l...)
		ch <- prometheus.MustNewConstMetric(descUploaded, prometheus.CounterValue, s.upld, l...)
		ch <- prometheus.MustNewConstHistogram(descStartups, s.n, s.startupS, s.cum, l...)
		ch <- prometheus.MustNewConstMetric(descStalls, prometheus.CounterValue, float64(s.stalls), l...)
		ch <- prometheus.MustNewConstMetric(descStallS, prometheus.CounterValue, s.stallS, l...)
		ch <- prometheus.MustNewConstMetric(descWatchS, prometheus.CounterValue, s.watchS, l...)
		ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(s.live), l...)
		ch <- prometheus.MustNewConstMetric(descChunks, prometheus.GaugeValue, float64(s.chunks), l...)
		ch <- prometheus.MustNewConstMetric(descRare, prometheus.GaugeValue, float64(s.rare), l...)
	}
}
