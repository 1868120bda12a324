package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/netx"
	"golang.org/x/time/rate"
)

// A peer's download cap d_i must hold for everything it receives, from
// peers and from the origin alike. netx.Shape keeps its buckets private, so
// the benchmark shapes downloads itself with one limiter per peer that both
// its swarm streams (downHost) and its origin HTTP connections (downConn)
// draw from, and leaves netx.Shape the upload direction only. The charging
// rule is netx's: read at most netx.ShapeBurst, then pay for what was read.

// newDownLimiter returns a bucket of bytesPerSec, or nil for unlimited.
func newDownLimiter(bytesPerSec float64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), netx.ShapeBurst)
}

// shapedRead reads into b and then waits for tokens for what it read.
func shapedRead(ctx context.Context, lim *rate.Limiter, b []byte, read func([]byte) (int, error)) (int, error) {
	if lim == nil {
		return read(b)
	}
	if len(b) > netx.ShapeBurst {
		b = b[:netx.ShapeBurst]
	}
	n, err := read(b)
	if n > 0 {
		// A failed wait means the connection is closing; the bytes are
		// still good, so deliver them.
		_ = lim.WaitN(ctx, n)
	}
	return n, err
}

// downHost charges every byte its streams read to one limiter.
type downHost struct {
	netx.Host
	lim    *rate.Limiter
	ctx    context.Context // ends on Close, releasing reads waiting for tokens
	cancel context.CancelFunc
}

var _ netx.Host = (*downHost)(nil)

func shapeDown(h netx.Host, lim *rate.Limiter) netx.Host {
	if lim == nil {
		return h
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &downHost{Host: h, lim: lim, ctx: ctx, cancel: cancel}
}

// Unwrap returns the shaped host (so GossipSub finds a libp2p host).
func (h *downHost) Unwrap() netx.Host { return h.Host }

func (h *downHost) wrap(s netx.Stream) netx.Stream {
	ctx, cancel := context.WithCancel(h.ctx)
	return &downStream{Stream: s, lim: h.lim, ctx: ctx, cancel: cancel}
}

func (h *downHost) NewStream(ctx context.Context, p netx.PeerID, addrs []string, proto string) (netx.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, addrs, proto)
	if err != nil {
		return nil, err
	}
	return h.wrap(s), nil
}

func (h *downHost) SetStreamHandler(proto string, fn func(netx.Stream)) {
	if fn == nil {
		h.Host.SetStreamHandler(proto, nil)
		return
	}
	h.Host.SetStreamHandler(proto, func(s netx.Stream) { fn(h.wrap(s)) })
}

func (h *downHost) Close() error {
	h.cancel()
	return h.Host.Close()
}

type downStream struct {
	netx.Stream
	lim    *rate.Limiter
	ctx    context.Context // ends on Close/Reset
	cancel context.CancelFunc
}

func (s *downStream) Read(b []byte) (int, error) { return shapedRead(s.ctx, s.lim, b, s.Stream.Read) }

func (s *downStream) Close() error {
	s.cancel()
	return s.Stream.Close()
}

func (s *downStream) Reset() error {
	s.cancel()
	return s.Stream.Reset()
}

// downConn is a TCP connection to the origin whose reads draw from the
// peer's download limiter.
type downConn struct {
	net.Conn
	lim    *rate.Limiter
	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	once   sync.Once
}

func (c *downConn) Read(b []byte) (int, error) { return shapedRead(c.ctx, c.lim, b, c.Conn.Read) }

func (c *downConn) Close() error {
	c.once.Do(c.cancel)
	return c.Conn.Close()
}

// shapedHTTP returns an HTTP client whose connections' reads draw from lim
// (nil: unshaped). It never uses a proxy: the origin is on loopback.
func shapedHTTP(lim *rate.Limiter, conns int) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, fmt.Errorf("dial origin %s: %w", addr, err)
			}
			if lim == nil {
				return c, nil
			}
			cctx, cancel := context.WithCancel(context.Background())
			return &downConn{Conn: c, lim: lim, ctx: cctx, cancel: cancel}, nil
		},
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
	}
	return &http.Client{Transport: t}
}
