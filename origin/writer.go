package origin

import (
	"context"
	"io"
	"net/http"
)

// maxWriteChunk is the largest body write made in one go while the upload
// limit is on: small enough that concurrent responses interleave fairly on
// the shared bucket.
const maxWriteChunk = 64 << 10

// writeChunk sizes the writes (and the bucket's burst) for a limit of
// bytesPerSec: about 1/20 s worth, so that the limit holds at fine grain
// even for slow rates, between 512 B and maxWriteChunk.
func writeChunk(bytesPerSec float64) int {
	return int(min(max(bytesPerSec/20, 512), maxWriteChunk))
}

// countingWriter counts body bytes and the status code, and paces the body
// through the server's shared token bucket when there is one.
type countingWriter struct {
	http.ResponseWriter
	s      *Server
	ctx    context.Context // the request's: a gone client stops the wait
	status int
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.s.limiter == nil {
		n, err := w.ResponseWriter.Write(p)
		w.s.counted(int64(n))
		return n, err
	}
	written := 0
	for len(p) > 0 {
		k := min(len(p), w.s.chunk)
		if err := w.s.limiter.WaitN(w.ctx, k); err != nil {
			return written, err
		}
		n, err := w.ResponseWriter.Write(p[:k])
		w.s.counted(int64(n))
		written += n
		if err != nil {
			return written, err
		}
		p = p[k:]
	}
	return written, nil
}

// ReadFrom keeps net/http's sendfile path when there is no limit; with a
// limit every byte must pass through Write and the bucket.
func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok && w.s.limiter == nil {
		n, err := rf.ReadFrom(r)
		w.s.counted(n)
		return n, err
	}
	buf := make([]byte, maxWriteChunk)
	return io.CopyBuffer(writerOnly{w}, r, buf)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writerOnly hides ReadFrom so io.CopyBuffer does not recurse into it.
type writerOnly struct{ io.Writer }
