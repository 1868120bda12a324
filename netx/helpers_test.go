package netx

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

const (
	echoProto = "/shoal/test/echo/1"
	sinkProto = "/shoal/test/sink/1" // reads all, replies with SHA-256
)

// payload is deterministic content from (seed, size) so failures reproduce.
func payload(seed uint64, size int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// echo copies everything back and closes when the client closes its side.
func echo(s Stream) {
	if _, err := io.Copy(s, s); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// sink hashes everything it reads and answers with the digest.
func sink(s Stream) {
	h := sha256.New()
	if _, err := io.Copy(h, s); err != nil {
		s.Reset()
		return
	}
	s.Write(h.Sum(nil))
	s.Close()
}

// roundTrip writes data on s from a goroutine (so data larger than the
// buffers cannot deadlock), half-closes, and returns all that comes back.
func roundTrip(t testing.TB, s Stream, data []byte) []byte {
	t.Helper()
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		if err == nil {
			err = s.CloseWrite()
		}
		werr <- err
	}()
	// Errorf, not Fatalf: callers run this on their own goroutines.
	got, err := io.ReadAll(s)
	if err != nil {
		t.Errorf("read back: %v", err)
	}
	if err := <-werr; err != nil {
		t.Errorf("write: %v", err)
	}
	s.Close()
	return got
}

func mustEqual(t testing.TB, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("got %d bytes, want %d (contents differ: %v)", len(got), len(want), len(got) == len(want))
	}
}

// checkNoLeaks fails the test if, once it is over, more goroutines are
// running than when it began. Exits are asynchronous, so it polls for a
// bounded time rather than asserting a timing.
func checkNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		const tolerance = 2
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before+tolerance {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Fatalf("goroutine leak: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
