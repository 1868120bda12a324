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

// BenchmarkBitfieldForms is the cost of choosing a bitfield's form and
// encoding and decoding it, for a content of 2^20 chunks: a peer holding a
// window of it (few runs), and one holding every other chunk (the worst
// case: more runs than raw bytes, so raw is sent after counting them).
func BenchmarkBitfieldForms(b *testing.B) {
	const n = 1 << 20
	window := NewBitfield(n)
	for i := 300_000; i < 340_000; i++ {
		window.Set(i)
	}
	alternate := NewBitfield(n)
	for i := 0; i < n; i += 2 {
		alternate.Set(i)
	}
	for _, tc := range []struct {
		name string
		bf   *Bitfield
	}{{"window", window}, {"alternate", alternate}} {
		b.Run(tc.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				frame, err := Marshal(&BitfieldUpdate{Bits: tc.bf})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Unmarshal(frame); err != nil {
					b.Fatal(err)
				}
				size = len(frame)
			}
			b.ReportMetric(float64(size), "frame-bytes")
		})
	}
}
