package tracker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics live in the Server's own registry, so several trackers (tests, the
// demo) can run in one process without clashing.
type metrics struct {
	reg       *prometheus.Registry
	announces *prometheus.CounterVec // by result: ok, invalid
	swarms    prometheus.Gauge
	peers     prometheus.Gauge
	seeds     prometheus.Gauge
	expired   prometheus.Counter
	unlisted  prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		announces: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_tracker_announces_total", Help: "Announce requests by result (ok, invalid, forged, refused, limited, full, store).",
		}, []string{"result"}),
		swarms:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_tracker_swarms", Help: "Swarms with at least one live peer."}),
		peers:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_tracker_peers", Help: "Live peers over all swarms."}),
		seeds:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_tracker_seeds", Help: "Live peers that have the whole content."}),
		expired:  prometheus.NewCounter(prometheus.CounterOpts{Name: "shoal_tracker_expired_peers_total", Help: "Peers dropped for not announcing within the TTL."}),
		unlisted: prometheus.NewCounter(prometheus.CounterOpts{Name: "shoal_tracker_unlisted_total", Help: "Announces answered but not listed: swarm or tracker at its peer cap."}),
	}
	// Pre-create the labels so dashboards see zeros rather than gaps.
	for _, r := range []string{resultOK, resultInvalid, resultForged, resultRefused, resultLimited, resultFull, resultStore} {
		m.announces.WithLabelValues(r)
	}
	m.reg.MustRegister(m.announces, m.swarms, m.peers, m.seeds, m.expired, m.unlisted,
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
	resultStore   = "store"   // the shared store failed (Redis unreachable)
)
