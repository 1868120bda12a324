package wire

import (
	"bytes"
	"io"
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

// BenchmarkDataBuffer writes and reads one default-size chunk per op through
// a bytes.Buffer: one copy in, one copy out, nothing else.
func BenchmarkDataBuffer(b *testing.B) {
	d := &Data{Index: 1, Payload: payload(1, core.DefaultChunkSize)}
	var buf bytes.Buffer
	r := NewReader(&buf, 0)
	b.SetBytes(int64(len(d.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteMessage(&buf, d); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDataBufferAlloc is BenchmarkDataBuffer with a recycled payload
// buffer, as a session with a buffer pool would read.
func BenchmarkDataBufferAlloc(b *testing.B) {
	d := &Data{Index: 1, Payload: payload(1, core.DefaultChunkSize)}
	var buf bytes.Buffer
	r := NewReader(&buf, 0)
	pool := make([]byte, core.DefaultChunkSize)
	r.Alloc = func(int) []byte { return pool }
	b.SetBytes(int64(len(d.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteMessage(&buf, d); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDataPipe streams chunks through an io.Pipe, which hands the
// writer's payload straight to the reader's buffer: a single copy.
func BenchmarkDataPipe(b *testing.B) {
	d := &Data{Index: 1, Payload: payload(1, core.DefaultChunkSize)}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	n := b.N
	go func() {
		for range n {
			if err := WriteMessage(pw, d); err != nil {
				done <- err
				return
			}
		}
		done <- pw.Close()
	}()
	r := NewReader(pr, 0)
	b.SetBytes(int64(len(d.Payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for range n {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkControl measures the per-message overhead of small frames.
func BenchmarkControl(b *testing.B) {
	msgs := []Message{&Request{Index: 1, Length: core.DefaultChunkSize}, &Have{Index: 9}, &Unchoke{}}
	var buf bytes.Buffer
	r := NewReader(&buf, 0)
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range msgs {
			if err := WriteMessage(&buf, m); err != nil {
				b.Fatal(err)
			}
			if _, err := r.Next(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
