package netx

import (
	"errors"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The shaping tests run in synctest bubbles, where time is virtual: the
// token buckets' clock only advances when every goroutine is blocked, so the
// elapsed time below is exactly what the buckets allowed, not a wall-clock
// measurement, and the checks cannot flake on a busy machine.

// transfer sends perStream bytes on each of streams concurrent streams from
// `from` to a sink on `to`, and returns the virtual time it took.
func transfer(t *testing.T, from, to Host, streams, perStream int) time.Duration {
	t.Helper()
	var received sync.Map // stream index → bytes counted by the receiver
	to.SetStreamHandler("/count", func(s Stream) {
		defer s.Close()
		var idx [1]byte
		if _, err := io.ReadFull(s, idx[:]); err != nil {
			t.Error(err)
			return
		}
		n, err := io.Copy(io.Discard, s)
		if err != nil {
			t.Error(err)
		}
		received.Store(int(idx[0]), n)
		s.Write([]byte{1}) // tell the sender everything arrived
	})
	start := time.Now()
	var wg sync.WaitGroup
	for i := range streams {
		wg.Go(func() {
			s, err := from.NewStream(t.Context(), to.ID(), nil, "/count")
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			if _, err := s.Write(append([]byte{byte(i)}, payload(uint64(i), perStream-1)...)); err != nil {
				t.Error(err)
				return
			}
			s.CloseWrite()
			if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i := range streams {
		if n, _ := received.Load(i); n != int64(perStream-1) {
			t.Errorf("stream %d: receiver counted %v bytes, want %d", i, n, perStream-1)
		}
	}
	return elapsed
}

func TestShapeSharesOneBucketAcrossStreams(t *testing.T) {
	const (
		streams   = 4
		perStream = 1_000_000
		total     = streams * perStream
		rate      = 2_500_000 // 20 Mbit/s in bytes per second
	)
	// The first ShapeBurst bytes ride on the initially full bucket.
	want := time.Duration(float64(total-ShapeBurst) / rate * float64(time.Second))
	tests := []struct {
		name     string
		up, down float64 // sender's up, receiver's down
	}{
		{"upload", rate, 0},
		{"download", 0, rate},
		{"both", rate, rate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := NewMemNetwork()
				a, _ := n.NewHost("a")
				b, _ := n.NewHost("b")
				sa, sb := Shape(a, tc.up, 0), Shape(b, 0, tc.down)
				defer sa.Close()
				defer sb.Close()
				got := transfer(t, sa, sb, streams, perStream)
				t.Logf("%d bytes in %v of virtual time: %.0f B/s", total, got, float64(total)/got.Seconds())
				// Allow one burst of slack per direction for pieces in
				// flight when the bucket empties.
				slack := time.Duration(float64(2*ShapeBurst) / rate * float64(time.Second))
				if got < want-slack || got > want+slack {
					t.Errorf("%d bytes over %d streams took %v, want %v ± %v (%.0f B/s)",
						total, streams, got, want, slack, float64(total)/got.Seconds())
				}
			})
		})
	}
}

func TestShapeUnlimitedIsPassThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork()
		a, _ := n.NewHost("a")
		b, _ := n.NewHost("b")
		sa, sb := Shape(a, 0, 0), Shape(b, 0, 0)
		defer sa.Close()
		defer sb.Close()
		if got := transfer(t, sa, sb, 3, 500_000); got != 0 {
			t.Errorf("unshaped transfer took %v of virtual time, want 0", got)
		}
	})
}

func TestShapedWriteReleasedByReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork()
		a, _ := n.NewHost("a")
		b, _ := n.NewHost("b")
		b.SetStreamHandler(echoProto, echo)
		sa := Shape(a, 1000, 0) // a 1 MB write would take ~17 minutes
		defer sa.Close()
		defer b.Close()
		s, err := sa.NewStream(t.Context(), b.ID(), nil, echoProto)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := s.Write(make([]byte, 1_000_000))
			done <- err
		}()
		time.Sleep(time.Second) // virtual: the writer is now waiting for tokens
		start := time.Now()
		s.Reset()
		if err := <-done; err == nil {
			t.Error("write on a reset stream succeeded")
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("writer needed %v after the reset to give up, want 0", waited)
		}
		if _, err := s.Read(make([]byte, 1)); !errors.Is(err, ErrStreamReset) {
			t.Errorf("read after reset: err = %v, want ErrStreamReset", err)
		}
	})
}
