package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"testing"
	"testing/iotest"
)

// stream encodes msgs back to back with WriteMessage.
func stream(t *testing.T, msgs ...Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatalf("WriteMessage(%T): %v", m, err)
		}
	}
	return buf.Bytes()
}

// manyMessages is a deterministic mix of every message type and payload size.
func manyMessages(n int) []Message {
	var out []Message
	for i := range n {
		for _, tc := range roundTripCases() {
			if _, ok := tc.m.(*Data); ok && i%2 == 1 {
				tc.m = &Data{Index: uint32(i), Payload: payload(uint64(i), 1+i*997%(3*inlinePayload))}
			}
			out = append(out, tc.m)
		}
	}
	return out
}

func TestReaderBackToBack(t *testing.T) {
	msgs := manyMessages(20)
	b := stream(t, msgs...)
	for _, wrap := range []struct {
		name string
		r    func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte at a time", iotest.OneByteReader},
		{"half reads", iotest.HalfReader},
		{"EOF with data", iotest.DataErrReader},
	} {
		t.Run(wrap.name, func(t *testing.T) {
			r := NewReader(wrap.r(bytes.NewReader(b)), 0)
			for i, want := range msgs {
				got, err := r.Next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("frame %d = %T, differs from the %T written", i, got, want)
				}
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("after the last frame: err = %v, want exactly io.EOF", err)
			}
		})
	}
}

// TestReaderUnexpectedEOF cuts a stream at every byte: a cut on a frame
// boundary is a clean io.EOF, anywhere else io.ErrUnexpectedEOF.
func TestReaderUnexpectedEOF(t *testing.T) {
	msgs := []Message{&Have{Index: 1}, &Data{Index: 2, Payload: payload(3, 2*inlinePayload)}, &Choke{},
		&Data{Index: 3, Payload: []byte("small")}, &BitfieldUpdate{Bits: bitsOf(40, 3)}}
	var boundaries = map[int]bool{0: true}
	var b []byte
	for _, m := range msgs {
		f, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, f...)
		boundaries[len(b)] = true
	}
	for cut := 0; cut < len(b); cut++ {
		r := NewReader(bytes.NewReader(b[:cut]), 0)
		var err error
		for err == nil {
			_, err = r.Next()
		}
		if boundaries[cut] {
			if err != io.EOF {
				t.Fatalf("cut at frame boundary %d: err = %v, want io.EOF", cut, err)
			}
		} else if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut inside a frame at %d: err = %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
}

// TestReaderSkipsRejectedFrames: after an unknown type or a malformed frame
// the reader sits on the next frame, so a caller may ignore it and go on.
func TestReaderSkipsRejectedFrames(t *testing.T) {
	var b []byte
	b = append(b, stream(t, &Have{Index: 1})...)
	b = append(b, frame(99, make([]byte, 10))...)
	b = append(b, frame(99, make([]byte, 3*smallFrame))...)
	b = append(b, frame(TypeHave, u32(1, 2))...)
	b = append(b, frame(TypeData, u32(1, MaxPayload-1), make([]byte, 2*smallFrame))...)
	b = append(b, frame(TypeChoke, make([]byte, 2*smallFrame))...)
	b = append(b, stream(t, &Have{Index: 2})...)

	r := NewReader(bytes.NewReader(b), 0)
	want := []error{nil, ErrUnknownType, ErrUnknownType, ErrMalformed, ErrMalformed, ErrMalformed, nil}
	for i, w := range want {
		m, err := r.Next()
		if !errors.Is(err, w) || (w == nil) != (m != nil) {
			t.Fatalf("frame %d: %v, %v; want error %v", i, m, err, w)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("end: %v, want io.EOF", err)
	}
}

func TestReaderMaxFrame(t *testing.T) {
	b := stream(t, &Data{Payload: make([]byte, 200)})
	src := bytes.NewReader(b)
	_, err := NewReader(src, 100).Next()
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	if read := len(b) - src.Len(); read != 4 {
		t.Fatalf("reader consumed %d bytes of an oversize frame, want just the 4-byte length", read)
	}
	if m, err := NewReader(bytes.NewReader(b), 300).Next(); err != nil || len(m.(*Data).Payload) != 200 {
		t.Fatalf("within limit: %v, %v", m, err)
	}
}

// TestReaderDoesNotAllocateFromOversizeLength guards against sizing a buffer
// from an untrusted length before checking it against the limit.
func TestReaderDoesNotAllocateFromOversizeLength(t *testing.T) {
	for _, b := range [][]byte{
		append(u32(0xffffffff), byte(TypeData)),
		append(u32(MaxFrame+1), byte(TypeBitfield)),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := NewReader(bytes.NewReader(b), 0).Next()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("err = %v, want ErrFrameTooLarge", err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Fatalf("rejecting an oversize frame allocated %d bytes", grew)
		}
	}
}

// TestReaderPayloadsAreOwned: payloads stay intact after later frames, so the
// session may keep them without copying.
func TestReaderPayloadsAreOwned(t *testing.T) {
	small, large := payload(1, 100), payload(2, 3*inlinePayload)
	r := NewReader(bytes.NewReader(stream(t,
		&Data{Index: 1, Payload: small}, &Data{Index: 2, Payload: large},
		&Data{Index: 3, Payload: payload(3, 100)}, &BitfieldUpdate{Bits: bitsOf(9000, 1)},
		&Data{Index: 4, Payload: payload(4, 3*inlinePayload)})), 0)
	var got []*Data
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := m.(*Data); ok {
			got = append(got, d)
		}
	}
	if !bytes.Equal(got[0].Payload, small) || !bytes.Equal(got[1].Payload, large) {
		t.Fatal("an earlier payload changed after later frames were read")
	}
	if cap(got[1].Payload) != len(large) {
		t.Fatalf("large payload cap %d, want exactly its length %d", cap(got[1].Payload), len(large))
	}
}

// TestReaderDoesNotReadAhead: the stream can be handed on between frames.
func TestReaderDoesNotReadAhead(t *testing.T) {
	first := stream(t, &Have{Index: 5}, &Data{Payload: make([]byte, 2*inlinePayload)})
	src := bytes.NewReader(append(bytes.Clone(first), "rest"...))
	r := NewReader(src, 0)
	for range 2 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if rest, _ := io.ReadAll(src); string(rest) != "rest" {
		t.Fatalf("left %q in the stream, want %q", rest, "rest")
	}
}

type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return w.Buffer.Write(p) }

func TestWriteMessageOneWriteForSmallFrames(t *testing.T) {
	for _, m := range []Message{&Have{Index: 1}, &Request{Length: 1}, &Data{Payload: make([]byte, inlinePayload)},
		&Handshake{Bits: bitsOf(100)}} {
		var w countingWriter
		if err := WriteMessage(&w, m); err != nil {
			t.Fatal(err)
		}
		if w.writes != 1 {
			t.Errorf("%T: %d writes, want 1", m, w.writes)
		}
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteMessagePropagatesErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, m := range []Message{&Choke{}, &Data{Payload: make([]byte, 2*inlinePayload)}} {
		if err := WriteMessage(failWriter{boom}, m); !errors.Is(err, boom) {
			t.Errorf("%T: err = %v, want boom", m, err)
		}
	}
}

func TestReaderAlloc(t *testing.T) {
	big := payload(5, 3*inlinePayload)
	pool := make([]byte, 4*inlinePayload)
	var asked []int
	r := NewReader(bytes.NewReader(stream(t,
		&Data{Index: 1, Payload: big}, &Data{Index: 2, Payload: []byte("tiny")},
		&Data{Index: 3, Payload: payload(6, 5*inlinePayload)})), 0)
	r.Alloc = func(n int) []byte { asked = append(asked, n); return pool }
	m, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if p := m.(*Data).Payload; !bytes.Equal(p, big) || &p[0] != &pool[0] {
		t.Fatal("large payload was not read into the Alloc buffer")
	}
	if m, err = r.Next(); err != nil || string(m.(*Data).Payload) != "tiny" {
		t.Fatalf("small payload: %v, %v", m, err)
	}
	// A buffer too short for the payload is not used.
	if m, err = r.Next(); err != nil || len(m.(*Data).Payload) != 5*inlinePayload || &m.(*Data).Payload[0] == &pool[0] {
		t.Fatalf("oversize payload: %v", err)
	}
	if !reflect.DeepEqual(asked, []int{len(big), 5 * inlinePayload}) {
		t.Fatalf("Alloc asked for %v", asked)
	}
}
