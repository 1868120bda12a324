package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoal-cdn/shoal/buildinfo"
)

// peerCollector turns the sessions' counters into Prometheus metrics at
// scrape time, so the swarm engine needs no metrics dependency.
type peerCollector struct{ p *Peer }

var (
	descFromPeers   = prometheus.NewDesc("shoal_peer_bytes_from_peers_total", "Verified content bytes received from other peers.", []string{"content"}, nil)
	descFromOrigin  = prometheus.NewDesc("shoal_peer_bytes_from_origin_total", "Verified content bytes fetched from the origin/CDN.", []string{"content"}, nil)
	descUploaded    = prometheus.NewDesc("shoal_peer_bytes_uploaded_total", "Content bytes sent to other peers.", []string{"content"}, nil)
	descOffload     = prometheus.NewDesc("shoal_peer_offload_ratio", "Share of downloaded bytes that came from peers (0–1).", []string{"content"}, nil)
	descPeers       = prometheus.NewDesc("shoal_peer_swarm_peers", "Connected peers in the swarm.", []string{"content"}, nil)
	descHave        = prometheus.NewDesc("shoal_peer_chunks_held", "Chunks of the content held, verified.", []string{"content"}, nil)
	descChunks      = prometheus.NewDesc("shoal_peer_chunks", "Chunks in the content.", []string{"content"}, nil)
	descMinAvail    = prometheus.NewDesc("shoal_peer_min_availability", "Fewest connected peers holding any chunk still missing here (rare-chunk scarcity; 0 means some chunk only the origin has).", []string{"content"}, nil)
	descRare        = prometheus.NewDesc("shoal_peer_rare_chunks", "Missing chunks that no connected peer holds.", []string{"content"}, nil)
	descBad         = prometheus.NewDesc("shoal_peer_bad_chunks_total", "Chunks received from peers that failed verification.", []string{"content"}, nil)
	descBans        = prometheus.NewDesc("shoal_peer_bans_total", "Peers banned from the swarm for sending bad chunks.", []string{"content"}, nil)
	descHaveFrames  = prometheus.NewDesc("shoal_peer_have_frames_total", "Frames announcing chunks (HAVE, or batched HAVES) sent to other peers.", []string{"content"}, nil)
	descHaves       = prometheus.NewDesc("shoal_peer_haves_total", "Chunk announcements sent to other peers, whether one per frame or batched.", []string{"content"}, nil)
	descReceived    = prometheus.NewDesc("shoal_peer_data_received_bytes_total", "Chunk bytes received, duplicates included (what the download carried; from=peers or origin). Beyond shoal_peer_bytes_from_*_total: chunks that came twice.", []string{"content", "from"}, nil)
	descLive        = prometheus.NewDesc("shoal_peer_live_channels", "Live channels the gateway follows (polls and holds segment swarms for).", nil, nil)
	descLearned     = prometheus.NewDesc("shoal_peer_discovered_peers_total", "Peers a discovery source (tracker, dht, pex) named for a swarm.", []string{"source"}, nil)
	descConnected   = prometheus.NewDesc("shoal_peer_discovered_connected_total", "Connections to swarm peers (dialled and handshaken) a discovery source brought.", []string{"source"}, nil)
	descDHTTable    = prometheus.NewDesc("shoal_peer_dht_routing_table_peers", "DHT servers in the DHT node's routing table.", nil, nil)
	descMode        = prometheus.NewDesc("shoal_peer_p2p_mode", "The swarm's P2P mode under the operator policy and local flags: 0 on, 1 leech-only (no upload), 2 off (origin only).", []string{"content"}, nil)
	descModeChanges = prometheus.NewDesc("shoal_peer_p2p_mode_changes_total", "Swarms' P2P mode changes made by the operator policy, local flags or metered/battery state.", nil, nil)
	descPolicy      = prometheus.NewDesc("shoal_peer_policy_serial", "Serial of the operator policy the peer holds (0: none).", nil, nil)
	descUploadCap   = prometheus.NewDesc("shoal_peer_upload_cap_bytes_per_second", "Upload cap to peers across swarms from the policy and --upload-limit (0: none).", nil, nil)
	descMetered     = prometheus.NewDesc("shoal_peer_metered", "1 while the peer takes its network to be metered.", nil, nil)
	descBattery     = prometheus.NewDesc("shoal_peer_on_battery", "1 while the peer takes itself to run on battery.", nil, nil)
	descWritable    = prometheus.NewDesc("shoal_peer_cache_writable", "1 while the cache stores chunks; 0 after a failed write (a full disk), until a probe write succeeds: fetching is paused meanwhile.", nil, nil)
)

func (c peerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFromPeers, descFromOrigin, descUploaded, descOffload, descPeers, descHave, descChunks, descMinAvail, descRare, descBad, descBans, descHaveFrames, descHaves, descReceived, descLive, descWritable, descLearned, descConnected, descDHTTable,
		descMode, descModeChanges, descPolicy, descUploadCap, descMetered, descBattery} {
		ch <- d
	}
}

func (c peerCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descLive, prometheus.GaugeValue, float64(c.p.live.count()))
	writable := 1.0
	if c.p.cache.chunks.WriteErr() != nil {
		writable = 0
	}
	ch <- prometheus.MustNewConstMetric(descWritable, prometheus.GaugeValue, writable)
	ps := c.p.pol.status()
	ch <- prometheus.MustNewConstMetric(descModeChanges, prometheus.CounterValue, float64(ps.ModeChanges))
	ch <- prometheus.MustNewConstMetric(descPolicy, prometheus.GaugeValue, float64(ps.Serial))
	ch <- prometheus.MustNewConstMetric(descUploadCap, prometheus.GaugeValue, float64(ps.UploadBps))
	ch <- prometheus.MustNewConstMetric(descMetered, prometheus.GaugeValue, b2f(ps.Metered))
	ch <- prometheus.MustNewConstMetric(descBattery, prometheus.GaugeValue, b2f(ps.OnBattery))
	ds := c.p.discoveryStatus()
	for src, n := range ds.Sources {
		ch <- prometheus.MustNewConstMetric(descLearned, prometheus.CounterValue, float64(n.Learned), string(src))
		ch <- prometheus.MustNewConstMetric(descConnected, prometheus.CounterValue, float64(n.Connected), string(src))
	}
	if ds.DHT != nil {
		ch <- prometheus.MustNewConstMetric(descDHTTable, prometheus.GaugeValue, float64(ds.DHT.RoutingTable))
	}
	for _, s := range c.p.Sessions() {
		x := s.Stats()
		id := s.Content().ID.String()
		ch <- prometheus.MustNewConstMetric(descFromPeers, prometheus.CounterValue, float64(x.BytesFromPeers), id)
		ch <- prometheus.MustNewConstMetric(descFromOrigin, prometheus.CounterValue, float64(x.BytesFromOrigin), id)
		ch <- prometheus.MustNewConstMetric(descUploaded, prometheus.CounterValue, float64(x.BytesUploaded), id)
		ch <- prometheus.MustNewConstMetric(descOffload, prometheus.GaugeValue, offload(x.BytesFromPeers, x.BytesFromOrigin), id)
		ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(x.Peers), id)
		ch <- prometheus.MustNewConstMetric(descHave, prometheus.GaugeValue, float64(x.Have), id)
		ch <- prometheus.MustNewConstMetric(descChunks, prometheus.GaugeValue, float64(x.Chunks), id)
		ch <- prometheus.MustNewConstMetric(descMinAvail, prometheus.GaugeValue, float64(x.MinAvailability), id)
		ch <- prometheus.MustNewConstMetric(descRare, prometheus.GaugeValue, float64(x.RareChunks), id)
		ch <- prometheus.MustNewConstMetric(descBad, prometheus.CounterValue, float64(x.BadChunks), id)
		ch <- prometheus.MustNewConstMetric(descBans, prometheus.CounterValue, float64(x.Bans), id)
		ch <- prometheus.MustNewConstMetric(descHaveFrames, prometheus.CounterValue, float64(x.HaveFrames), id)
		ch <- prometheus.MustNewConstMetric(descHaves, prometheus.CounterValue, float64(x.Haves), id)
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(x.PeerDataReceived), id, "peers")
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(x.OriginDataReceived), id, "origin")
		ch <- prometheus.MustNewConstMetric(descMode, prometheus.GaugeValue, float64(s.Mode()), id)
	}
}

func (p *Peer) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(peerCollector{p}, cacheCollector{p}, buildinfo.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if p.cfg.AccessLog != nil {
		reg.MustRegister(p.cfg.AccessLog)
	}
	reg.MustRegister(p.plays.collectors()...)
	reg.MustRegister(p.gw.collectors()...)
	if c, ok := p.audit.(prometheus.Collector); ok {
		reg.MustRegister(c) // the audit log's written and dropped counts
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
