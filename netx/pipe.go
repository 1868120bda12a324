package netx

import (
	"fmt"
	"io"
	"sync"
)

// pipe is one direction of an in-memory stream: a bounded byte buffer between
// a single writer end and a single reader end. Unlike net.Pipe it is buffered,
// so a writer does not rendezvous with the reader on every call, which is how
// real transports behave (flow-control windows) and what keeps request
// pipelining from deadlocking in tests.
//
// It spawns no goroutines: blocked callers wait on a sync.Cond, which also
// counts as durably blocked inside a testing/synctest bubble.
type pipe struct {
	limit int // most unread bytes held before Write blocks

	mu   sync.Mutex // guards everything below
	cond sync.Cond  // signalled on any change of buf or the flags below
	buf  []byte     // unread bytes are buf[off:]
	off  int
	// eof: the writer is done; the reader gets io.EOF after draining.
	eof bool
	// readErr, once set, fails reads immediately (reset, or reader closed).
	readErr error
	// writeErr, once set, fails writes immediately (reset, reader closed,
	// or writer closed).
	writeErr error
}

func newPipe(limit int) *pipe {
	p := &pipe{limit: limit}
	p.cond.L = &p.mu
	return p
}

// read blocks until there are bytes, EOF or an error.
func (p *pipe) read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.readErr != nil {
			return 0, p.readErr
		}
		if len(b) == 0 {
			return 0, nil
		}
		if p.off < len(p.buf) {
			n := copy(b, p.buf[p.off:])
			p.off += n
			if p.off == len(p.buf) {
				// Reuse the array from the start so the buffer does not
				// creep forward forever.
				p.buf, p.off = p.buf[:0], 0
			}
			p.cond.Broadcast()
			return n, nil
		}
		if p.eof {
			return 0, io.EOF
		}
		p.cond.Wait()
	}
}

// write blocks until all of b is buffered or the pipe fails.
func (p *pipe) write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for len(b) > 0 {
		if p.writeErr != nil {
			return written, p.writeErr
		}
		free := p.limit - (len(p.buf) - p.off)
		if free <= 0 {
			p.cond.Wait()
			continue
		}
		if p.off > 0 && cap(p.buf)-len(p.buf) < min(free, len(b)) {
			// Slide unread bytes down instead of growing past the limit.
			n := copy(p.buf, p.buf[p.off:])
			p.buf, p.off = p.buf[:n], 0
		}
		n := min(free, len(b))
		p.buf = append(p.buf, b[:n]...)
		b = b[n:]
		written += n
		p.cond.Broadcast()
	}
	return written, nil
}

// closeWrite marks the end of data: the reader drains, then sees io.EOF.
func (p *pipe) closeWrite() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.writeErr == nil {
		p.writeErr = fmt.Errorf("write: %w", ErrStreamClosed)
	}
	p.eof = true
	p.cond.Broadcast()
}

// closeRead is the reader giving up: its own reads fail with ErrStreamClosed
// and the writer's writes fail with ErrStreamReset, as a libp2p writer's do
// once the remote has closed its read side.
func (p *pipe) closeRead() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readErr == nil {
		p.readErr = fmt.Errorf("read: %w", ErrStreamClosed)
	}
	if p.writeErr == nil {
		p.writeErr = fmt.Errorf("write: remote closed: %w", ErrStreamReset)
	}
	p.buf, p.off = nil, 0
	p.cond.Broadcast()
}

// reset fails both ends with err and drops any buffered bytes.
func (p *pipe) reset(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readErr == nil {
		p.readErr = err
	}
	if p.writeErr == nil {
		p.writeErr = err
	}
	p.buf, p.off = nil, 0
	p.cond.Broadcast()
}
