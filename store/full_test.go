package store

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// failWith makes the store's chunk and probe writes fail with errno (0:
// succeed) and counts the writes tried.
type failWith struct {
	errno syscall.Errno
	tries int
}

func (f *failWith) inject() error {
	f.tries++
	if f.errno == 0 {
		return nil
	}
	return &fs.PathError{Op: "write", Path: "/cache/.put-1", Err: f.errno}
}

// TestFullDiskMakesStoreUnwritableUntilProbe: a write that fails for lack
// of space returns an error naming the full disk, is logged once however
// many writes fail after it, and the store probes with growing delays until
// a probe write succeeds; then Puts work again.
func TestFullDiskMakesStoreUnwritableUntilProbe(t *testing.T) {
	var logs bytes.Buffer
	clock := &core.ManualClock{T: time.Unix(1e9, 0)}
	s := open(t, Config{Clock: clock, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	fail := &failWith{errno: syscall.ENOSPC}
	s.inject = fail.inject

	if err := s.Writable(); err != nil {
		t.Fatalf("fresh store: Writable = %v", err)
	}
	a, ha := gen("full-a", 1000)
	err := s.Put(ha, a)
	if !errors.Is(err, ErrWriteFailed) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put on a full disk: %v; want ErrWriteFailed wrapping ENOSPC", err)
	}
	if !strings.HasPrefix(err.Error(), "cache disk full: chunk "+ha.Short()) {
		t.Errorf("error %q: want it to start with \"cache disk full: chunk %s\"", err, ha.Short())
	}
	if s.Has(ha) {
		t.Error("a chunk whose write failed is in the store")
	}
	for i := range 5 {
		b, hb := gen("full-b"+string(rune('0'+i)), 1000)
		if err := s.Put(hb, b); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Put %d: %v, want ENOSPC", i, err)
		}
	}
	if n := strings.Count(logs.String(), "cache disk full"); n != 1 {
		t.Errorf("6 failed writes logged %d times, want once:\n%s", n, logs.String())
	}
	if err := s.WriteErr(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("WriteErr = %v, want the ENOSPC", err)
	}

	// Probes: none before its delay, each failure doubling the next delay
	// (with at most ±25% jitter), capped at probeMax.
	tries := fail.tries
	delay := probeFirst
	for round := range 8 {
		clock.Advance(delay * 3 / 4 * 99 / 100)
		if err := s.Writable(); !errors.Is(err, ErrWriteFailed) {
			t.Fatalf("round %d: Writable before the probe is due = %v", round, err)
		}
		if fail.tries != tries {
			t.Fatalf("round %d: probed %v after the failure, before the earliest due time %v", round, delay*3/4*99/100, delay*3/4)
		}
		clock.Advance(delay/2 + delay/100) // past delay*5/4: due
		if err := s.Writable(); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "probe write") {
			t.Fatalf("round %d: Writable with the disk still full = %v, want a failed probe", round, err)
		}
		if fail.tries != tries+1 {
			t.Fatalf("round %d: %d probe writes, want 1", round, fail.tries-tries)
		}
		tries = fail.tries
		delay = min(2*delay, probeMax)
	}

	// Space returns: the next due probe succeeds, and Puts work.
	fail.errno = 0
	clock.Advance(probeMax * 5 / 4)
	if err := s.Writable(); err != nil {
		t.Fatalf("Writable once space returned = %v", err)
	}
	if err := s.WriteErr(); err != nil {
		t.Errorf("WriteErr after recovery = %v", err)
	}
	mustPut(t, s, a, ha)
	if !strings.Contains(logs.String(), "writable again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

// TestAnyWriteErrorMakesStoreUnwritable: an I/O error other than a full
// disk also stops the store's writes (with its own message), and a Put that
// succeeds ends the state without waiting for a probe.
func TestAnyWriteErrorMakesStoreUnwritable(t *testing.T) {
	clock := &core.ManualClock{T: time.Unix(1e9, 0)}
	s := open(t, Config{Clock: clock})
	fail := &failWith{errno: syscall.EIO}
	s.inject = fail.inject
	a, ha := gen("eio-a", 500)
	err := s.Put(ha, a)
	if !errors.Is(err, ErrWriteFailed) || !strings.HasPrefix(err.Error(), "cache write failed: ") {
		t.Fatalf("Put with EIO: %v; want \"cache write failed: …\" wrapping ErrWriteFailed", err)
	}
	if err := s.Writable(); err == nil {
		t.Fatal("Writable right after a failed write = nil")
	}
	fail.errno = 0
	mustPut(t, s, a, ha)
	if err := s.Writable(); err != nil {
		t.Errorf("Writable after a successful Put = %v", err)
	}
}
