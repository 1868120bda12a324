package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// GatewayLimits bound what the gateway's clients can make the peer hold:
// response buffers come from one pool with a byte budget, a response takes
// at most gatewayBufsPerResponse of them whatever the chunk size, a client
// that stops reading is cut, and each client IP has a number of responses
// in progress. Zero fields take the defaults below.
type GatewayLimits struct {
	// Memory is the budget of response buffers across all responses, in
	// bytes (default DefaultGatewayMemory). A response that cannot get a
	// buffer within BufferWait is answered 503 with Retry-After.
	Memory int64 `yaml:"memory"`
	// StallTimeout cuts a response whose client takes no bytes for this
	// long (default DefaultGatewayStallTimeout).
	StallTimeout time.Duration `yaml:"stall_timeout"`
	// ClientStreams bounds the content and live responses in progress per
	// client IP address (default DefaultGatewayClientStreams); beyond it a
	// request is answered 429.
	ClientStreams int `yaml:"client_streams"`
	// BufferWait is how long a response waits for its first buffer when the
	// budget is spent (default DefaultGatewayBufferWait).
	BufferWait time.Duration `yaml:"buffer_wait"`
}

// Defaults of GatewayLimits: safe on a small machine.
const (
	DefaultGatewayMemory        = 64 << 20
	DefaultGatewayStallTimeout  = 30 * time.Second
	DefaultGatewayClientStreams = 64
	DefaultGatewayBufferWait    = 5 * time.Second
)

// gatewayBufSize is the size of one response buffer: the slice of a chunk
// read from the cache and written to the client at a time.
const gatewayBufSize = 256 << 10

// gatewayBufsPerResponse bounds the buffers one response holds (the one it
// writes from, the rest read ahead of it), so a response holds at most
// 1 MiB whatever the chunk size.
const gatewayBufsPerResponse = 4

// stallWriteSize is the most written to a client under one deadline: a
// client is cut only when it takes less than this in StallTimeout.
const stallWriteSize = 32 << 10

// fill applies the defaults and checks the values.
func (l *GatewayLimits) fill() error {
	if l.Memory == 0 {
		l.Memory = DefaultGatewayMemory
	}
	if l.StallTimeout == 0 {
		l.StallTimeout = DefaultGatewayStallTimeout
	}
	if l.ClientStreams == 0 {
		l.ClientStreams = DefaultGatewayClientStreams
	}
	if l.BufferWait == 0 {
		l.BufferWait = DefaultGatewayBufferWait
	}
	switch {
	case l.Memory < gatewayBufSize:
		return fmt.Errorf("%w: gateway memory %d bytes: want at least %d (one response buffer)", ErrBadInput, l.Memory, gatewayBufSize)
	case l.StallTimeout < 0:
		return fmt.Errorf("%w: gateway stall timeout %v: want a positive duration", ErrBadInput, l.StallTimeout)
	case l.ClientStreams < 0:
		return fmt.Errorf("%w: gateway client streams %d: want a positive number", ErrBadInput, l.ClientStreams)
	case l.BufferWait < 0:
		return fmt.Errorf("%w: gateway buffer wait %v: want a positive duration", ErrBadInput, l.BufferWait)
	}
	return nil
}

// errNoBuffer means the gateway's buffer budget stayed spent for BufferWait.
var errNoBuffer = errors.New("gateway memory budget spent")

// bufPool hands out the gateway's response buffers, all gatewayBufSize
// long, never more than its budget at a time. Buffers are allocated on
// first need and kept for reuse, so the pool's memory is at most the
// budget, with no garbage.
type bufPool struct {
	tokens chan struct{} // one per buffer in use; its capacity is the budget
	free   chan []byte   // allocated buffers not in use
}

func newBufPool(budget int64) *bufPool {
	n := int(max(1, budget/gatewayBufSize))
	return &bufPool{tokens: make(chan struct{}, n), free: make(chan []byte, n)}
}

// get waits for a buffer until ctx ends.
func (bp *bufPool) get(ctx context.Context) ([]byte, error) {
	select {
	case bp.tokens <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return bp.take(), nil
}

// tryGet returns a buffer if one is free beyond a reserve of a quarter of
// the budget (kept for responses that hold none yet), else nil.
func (bp *bufPool) tryGet() []byte {
	if len(bp.tokens) >= cap(bp.tokens)-cap(bp.tokens)/4 {
		return nil
	}
	select {
	case bp.tokens <- struct{}{}:
		return bp.take()
	default:
		return nil
	}
}

func (bp *bufPool) take() []byte {
	select {
	case b := <-bp.free:
		return b
	default:
		return make([]byte, gatewayBufSize)
	}
}

// put returns a buffer from get or tryGet.
func (bp *bufPool) put(b []byte) {
	select {
	case bp.free <- b[:gatewayBufSize]:
	default: // cannot happen: a buffer per token
	}
	<-bp.tokens
}

// inUse is the bytes of buffers handed out.
func (bp *bufPool) inUse() int64 { return int64(len(bp.tokens)) * gatewayBufSize }

// clientLimiter counts the responses in progress per client IP.
type clientLimiter struct {
	max int
	mu  sync.Mutex
	n   map[string]int // guarded by mu: responses in progress, by IP; no zero entries
}

// acquire counts a response for ip, or reports false if ip has max.
func (cl *clientLimiter) acquire(ip string) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.n[ip] >= cl.max {
		return false
	}
	cl.n[ip]++
	return true
}

func (cl *clientLimiter) release(ip string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.n[ip]--; cl.n[ip] <= 0 {
		delete(cl.n, ip)
	}
}

// gatewayBounds is the gateway's state for GatewayLimits.
type gatewayBounds struct {
	cfg       GatewayLimits
	pool      *bufPool
	clients   *clientLimiter
	responses atomic.Int64 // bounded responses in progress
	rejected  *prometheus.CounterVec
	stalled   prometheus.Counter
}

func newGatewayBounds(cfg GatewayLimits) *gatewayBounds {
	return &gatewayBounds{
		cfg:     cfg,
		pool:    newBufPool(cfg.Memory),
		clients: &clientLimiter{max: cfg.ClientStreams, n: map[string]int{}},
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_gateway_rejected_total",
			Help: "Gateway requests refused by a limit: client_streams (429) or memory (503).",
		}, []string{"limit"}),
		stalled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_gateway_stalled_total",
			Help: "Gateway responses cut because the client took no bytes for the stall timeout.",
		}),
	}
}

// collectors are the gateway's metrics.
func (g *gatewayBounds) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		g.rejected, g.stalled,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shoal_gateway_responses",
			Help: "Content and live responses in progress.",
		}, func() float64 { return float64(g.responses.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shoal_gateway_buffer_bytes",
			Help: "Bytes of response buffers in use (at most shoal_gateway_buffer_budget_bytes).",
		}, func() float64 { return float64(g.pool.inUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shoal_gateway_buffer_budget_bytes",
			Help: "Budget of response buffers (--gateway-memory).",
		}, func() float64 { return float64(cap(g.pool.tokens)) * gatewayBufSize }),
	}
}

// clientIP is the address a request came from, without its port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// bounded wraps a content or live route: it counts the response against
// its client's limit (429 beyond it) and cuts a client that stops reading.
func (g *gatewayBounds) bounded(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ip := clientIP(r)
		if !g.clients.acquire(ip) {
			g.rejected.WithLabelValues("client_streams").Inc()
			w.Header().Set("Retry-After", "1")
			http.Error(w, fmt.Sprintf("too many responses in progress for client %s: at most %d (--gateway-client-streams)", ip, g.cfg.ClientStreams),
				http.StatusTooManyRequests)
			return
		}
		defer g.clients.release(ip)
		g.responses.Add(1)
		defer g.responses.Add(-1)
		sw := &stallWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: g.cfg.StallTimeout, stalled: g.stalled}
		h(sw, r)
		sw.finish()
	}
}

// buffer takes a response's first buffer, waiting up to BufferWait. When
// none comes it answers 503 with Retry-After (unless the client left) and
// returns nil.
func (g *gatewayBounds) buffer(w http.ResponseWriter, r *http.Request) []byte {
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.BufferWait)
	defer cancel()
	b, err := g.pool.get(ctx)
	if err == nil {
		return b
	}
	if r.Context().Err() == nil {
		g.rejected.WithLabelValues("memory").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, g.cfg.BufferWait/time.Second))))
		http.Error(w, fmt.Sprintf("%v: no response buffer free within %v (--gateway-memory %d bytes); try again",
			errNoBuffer, g.cfg.BufferWait, cap(g.pool.tokens)*gatewayBufSize), http.StatusServiceUnavailable)
	}
	return nil
}

// stallWriter writes a response at most stallWriteSize at a time, each
// under a write deadline of timeout: a client that takes nothing for that
// long gets its connection cut, and the handler's write fails.
type stallWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	stalled prometheus.Counter
	armed   bool // a deadline is set on the connection
	failed  bool // a write failed: the connection is done for
}

func (sw *stallWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), stallWriteSize)
		sw.arm()
		m, err := sw.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			sw.fail(err)
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// fail records a failed write, counting it once if it was a stall.
func (sw *stallWriter) fail(err error) {
	if !sw.failed && errors.Is(err, os.ErrDeadlineExceeded) {
		sw.stalled.Inc()
	}
	sw.failed = true
}

func (sw *stallWriter) arm() {
	if sw.timeout > 0 && sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout)) == nil {
		sw.armed = true
	}
}

// finish sends what the server still buffers under the deadline, then
// clears it, so the next request on the connection starts without one.
func (sw *stallWriter) finish() {
	if !sw.armed || sw.failed {
		return
	}
	sw.arm()
	if err := sw.rc.Flush(); err != nil {
		sw.fail(err)
		return
	}
	sw.rc.SetWriteDeadline(time.Time{})
}

// Unwrap lets http.ResponseController reach the connection.
func (sw *stallWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }
