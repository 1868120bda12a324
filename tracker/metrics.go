package tracker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/shoal-cdn/shoal/buildinfo"
)

// metrics live in the Server's own registry, so several trackers (tests, the
// demo) can run in one process without clashing.
type metrics struct {
	reg       *prometheus.Registry
	announces *prometheus.CounterVec // by result: ok, invalid
	// The hot results' counters, looked up once rather than per announce.
	ok, invalid, overloaded prometheus.Counter
	inFlight                prometheus.Gauge
	swarms                  prometheus.Gauge
	peers                   prometheus.Gauge
	seeds                   prometheus.Gauge
	expired                 prometheus.Counter
	unlisted                prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		announces: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_tracker_announces_total", Help: "Announce requests by result (ok, invalid, forged, refused, limited, full, overloaded, store).",
		}, []string{"result"}),
		swarms:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_tracker_swarms", Help: "Swarms with at least one live peer."}),
		peers:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_tracker_peers", Help: "Live peers over all swarms."}),
		seeds:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_tracker_seeds", Help: "Live peers that have the whole content."}),
		expired:  prometheus.NewCounter(prometheus.CounterOpts{Name: "shoal_tracker_expired_peers_total", Help: "Peers dropped for not announcing within the TTL."}),
		unlisted: prometheus.NewCounter(prometheus.CounterOpts{Name: "shoal_tracker_unlisted_total", Help: "Announces answered but not listed: swarm or tracker at its peer cap."}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_tracker_announces_in_flight", Help: "Announces being handled when scraped (at most --max-inflight)."}),
	}
	// Pre-create the labels so dashboards see zeros rather than gaps.
	for _, r := range []string{resultOK, resultInvalid, resultForged, resultRefused, resultLimited, resultFull, resultOverloaded, resultStore} {
		m.announces.WithLabelValues(r)
	}
	m.ok = m.announces.WithLabelValues(resultOK)
	m.invalid = m.announces.WithLabelValues(resultInvalid)
	m.overloaded = m.announces.WithLabelValues(resultOverloaded)
	m.reg.MustRegister(m.announces, m.inFlight, m.swarms, m.peers, m.seeds, m.expired, m.unlisted, buildinfo.Collector(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

const (
	resultOK      = "ok"
	resultInvalid = "invalid" // malformed request
	resultForged  = "forged"  // bad signature, stale timestamp or replay
	resultRefused = "refused" // token refused or region not allowed
	resultLimited = "limited" // rate limit
	resultFull    = "full"    // swarm caps reached
	// resultOverloaded: refused unread, the tracker saturated (overload.go)
	resultOverloaded = "overloaded"
	resultStore      = "store" // the shared store failed (Redis unreachable)
)
