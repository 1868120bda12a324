package agent

import "github.com/prometheus/client_golang/prometheus"

// cacheCollector exports the chunk store's counters: what the background
// scrub verified, and damaged chunks removed and where they were found.
type cacheCollector struct{ p *Peer }

var (
	descScrubbed = prometheus.NewDesc("shoal_peer_cache_scrubbed_bytes_total", "Cached chunk bytes re-verified by the background scrub (--scrub-rate).", nil, nil)
	descCorrupt  = prometheus.NewDesc("shoal_peer_cache_corrupt_removed_total", "Damaged cache files removed, by where they were found: open (not a chunk), read or scrub.", []string{"found_at"}, nil)
)

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descScrubbed
	ch <- descCorrupt
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.p.cache.chunks.Stats()
	ch <- prometheus.MustNewConstMetric(descScrubbed, prometheus.CounterValue, float64(st.ScrubbedBytes))
	ch <- prometheus.MustNewConstMetric(descCorrupt, prometheus.CounterValue, float64(st.CorruptAtScan), "open")
	ch <- prometheus.MustNewConstMetric(descCorrupt, prometheus.CounterValue, float64(st.CorruptOnRead), "read")
	ch <- prometheus.MustNewConstMetric(descCorrupt, prometheus.CounterValue, float64(st.CorruptOnScrub), "scrub")
}
