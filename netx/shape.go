package netx

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"
)

// ShapeBurst is the token-bucket depth of a shaped link and the largest
// piece a shaped stream reads or writes at once. 64 KiB keeps the bucket's
// error within a few percent over a second even at a few Mbit/s, while still
// letting one 256 KiB chunk move in four steps.
const ShapeBurst = 64 << 10

// Shape wraps h so that all of its streams, inbound and outbound, share one
// upload and one download token bucket of up and down bytes per second (0
// means unlimited). `shoal bench` uses it to give each emulated peer its own
// u_i and d_i over either a MemNetwork or loopback libp2p.
//
// Shaping is at the byte-stream level: it does not model latency, loss or
// protocol overhead. A write larger than ShapeBurst is split into pieces.
func Shape(h Host, up, down float64) Host {
	ctx, cancel := context.WithCancel(context.Background())
	return &shapedHost{
		Host:   h,
		up:     newLimiter(up),
		down:   newLimiter(down),
		ctx:    ctx,
		cancel: cancel,
	}
}

func newLimiter(bytesPerSec float64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), ShapeBurst)
}

type shapedHost struct {
	Host
	up, down *rate.Limiter // nil when that direction is unlimited
	// ctx ends when the host closes, releasing streams waiting for tokens.
	ctx    context.Context
	cancel context.CancelFunc
}

var _ Host = (*shapedHost)(nil)

// Unwrap returns the shaped host.
func (h *shapedHost) Unwrap() Host { return h.Host }

func (h *shapedHost) wrap(s Stream) Stream {
	ctx, cancel := context.WithCancel(h.ctx)
	return &shapedStream{Stream: s, up: h.up, down: h.down, ctx: ctx, cancel: cancel}
}

func (h *shapedHost) NewStream(ctx context.Context, p PeerID, addrs []string, proto string) (Stream, error) {
	s, err := h.Host.NewStream(ctx, p, addrs, proto)
	if err != nil {
		return nil, err
	}
	return h.wrap(s), nil
}

func (h *shapedHost) SetStreamHandler(proto string, fn func(Stream)) {
	if fn == nil {
		h.Host.SetStreamHandler(proto, nil)
		return
	}
	h.Host.SetStreamHandler(proto, func(s Stream) { fn(h.wrap(s)) })
}

func (h *shapedHost) Close() error {
	h.cancel()
	return h.Host.Close()
}

// shapedStream charges every byte it moves to its host's buckets.
type shapedStream struct {
	Stream
	up, down *rate.Limiter
	// ctx ends on Close/Reset so a goroutine waiting for tokens is released
	// instead of sleeping out a long wait on a dead stream.
	ctx    context.Context
	cancel context.CancelFunc
}

func (s *shapedStream) Write(b []byte) (int, error) {
	if s.up == nil {
		return s.Stream.Write(b)
	}
	written := 0
	for len(b) > 0 {
		n := min(len(b), ShapeBurst)
		if err := s.up.WaitN(s.ctx, n); err != nil {
			return written, fmt.Errorf("shaped write: %w", ErrStreamClosed)
		}
		m, err := s.Stream.Write(b[:n])
		written += m
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

// Read takes the bytes first and pays for them afterwards: the bytes have
// already crossed the "wire" when they are charged, and the wait holds back
// the next read, so the sender meets backpressure as from a slow link.
func (s *shapedStream) Read(b []byte) (int, error) {
	if s.down == nil {
		return s.Stream.Read(b)
	}
	if len(b) > ShapeBurst {
		b = b[:ShapeBurst]
	}
	n, err := s.Stream.Read(b)
	if n > 0 {
		// A failed wait means the stream is closing; the bytes are still
		// good, so deliver them.
		_ = s.down.WaitN(s.ctx, n)
	}
	return n, err
}

func (s *shapedStream) Close() error {
	s.cancel()
	return s.Stream.Close()
}

func (s *shapedStream) Reset() error {
	s.cancel()
	return s.Stream.Reset()
}
