package origin

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoal-cdn/shoal/buildinfo"
)

// metrics lives in its own registry so that many servers (the demo, tests,
// benchmarks) can share one process without colliding in the global one.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	kinds     *prometheus.CounterVec
	bytes     prometheus.Counter
	inFlight  prometheus.Gauge
	knownVerb map[string]bool
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_origin_requests_total",
			Help: "File requests handled, by method and HTTP status code.",
		}, []string{"method", "code"}),
		kinds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_origin_requests_by_kind_total",
			Help: "File requests handled, by kind of layout path: manifest, hash_layer, root_page (a paged manifest's page of file roots), chunk, channel_update (a live channel's latest update, what followers poll), channel_history (a numbered update) or other.",
		}, []string{"kind"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_origin_response_bytes_total",
			Help: "Response body bytes sent (origin egress).",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_origin_in_flight_requests",
			Help: "File requests currently being served.",
		}),
		// Any other method is counted as "other" so that a client cannot
		// mint unbounded label values.
		knownVerb: map[string]bool{
			http.MethodGet: true, http.MethodHead: true, http.MethodPost: true,
			http.MethodPut: true, http.MethodDelete: true, http.MethodOptions: true,
			http.MethodPatch: true,
		},
	}
	m.reg.MustRegister(m.requests, m.kinds, m.bytes, m.inFlight, buildinfo.Collector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *metrics) method(v string) string {
	if m.knownVerb[v] {
		return v
	}
	return "other"
}

// instrument counts requests, status codes, in-flight requests and body
// bytes around next, and applies the upload limit to the body.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		kind := pathKind(r.URL.Path)
		if kind == kindChannelUpdate {
			s.updateRequests.Add(1)
		}
		s.metrics.kinds.WithLabelValues(kind).Inc()
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		cw := &countingWriter{ResponseWriter: w, s: s, ctx: r.Context()}
		next.ServeHTTP(cw, r)
		code := cw.status
		if code == 0 {
			code = http.StatusOK // handler wrote nothing: net/http sends 200
		}
		s.metrics.requests.WithLabelValues(s.metrics.method(r.Method), strconv.Itoa(code)).Inc()
	})
}

// counted records n body bytes sent.
func (s *Server) counted(n int64) {
	if n > 0 {
		s.bytes.Add(n)
		s.metrics.bytes.Add(float64(n))
	}
}
