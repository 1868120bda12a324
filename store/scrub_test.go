package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// runScrub starts Scrub on s and returns a stop function that ends it and
// returns its error.
func runScrub(s *Store, rate float64) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Scrub(ctx, rate) }()
	return func() error {
		cancel()
		return <-done
	}
}

// TestScrubRemovesCrashLeftovers: with no read at all, the background scrub
// finds every chunk whose bytes are damaged (planted before Open, and one
// damaged in place while the store is open), removes it through the normal
// removal path so OnRemove fires, and leaves exactly the good chunks.
func TestScrubRemovesCrashLeftovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := plantCrashLeftovers(t)
		s := open(t, Config{Dir: cl.dir})
		cl.checkOpenRemoved(t, s)
		var mu sync.Mutex
		removed := map[core.Hash]int{}
		s.OnRemove(func(h core.Hash) { mu.Lock(); removed[h]++; mu.Unlock() })

		stop := runScrub(s, 1<<20)
		time.Sleep(time.Minute) // virtual: the first pass takes well under a second
		st := s.Stats()
		if st.CorruptOnScrub != int64(len(cl.damaged)) || st.Scrubbed != int64(len(cl.good)) {
			t.Fatalf("after the first pass: CorruptOnScrub %d, Scrubbed %d; want %d and %d", st.CorruptOnScrub, st.Scrubbed, len(cl.damaged), len(cl.good))
		}

		// Damage a chunk that is now verified: the next pass, one
		// ScrubPause later, removes it.
		var victim core.Hash
		for h := range cl.good {
			victim = h
			break
		}
		flipFile(t, s.path(victim), 7)
		time.Sleep(ScrubPause)
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Errorf("Scrub returned %v after its context ended; want context.Canceled", err)
		}
		delete(cl.good, victim)
		cl.damaged = append(cl.damaged, victim)

		mu.Lock()
		for _, h := range cl.damaged {
			if removed[h] != 1 {
				t.Errorf("OnRemove heard of damaged chunk %s %d times, want once", h.Short(), removed[h])
			}
		}
		if len(removed) != len(cl.damaged) {
			t.Errorf("OnRemove heard of %d chunks, want the %d damaged", len(removed), len(cl.damaged))
		}
		mu.Unlock()
		if st := s.Stats(); st.CorruptOnRead != 0 || st.CorruptOnScrub != int64(len(cl.damaged)) {
			t.Errorf("CorruptOnRead %d, CorruptOnScrub %d; want 0 and %d", st.CorruptOnRead, st.CorruptOnScrub, len(cl.damaged))
		}
		cl.checkClean(t, s)
	})
}

func flipFile(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestScrubKeepsToItsRate: the scrub reads no faster than its rate (in the
// bubble's virtual time), takes chunks not yet verified since Open first,
// and stops when the store closes.
func TestScrubKeepsToItsRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const chunk, n, rate = 64 << 10, 32, 256 << 10 // a pass takes 8 s
		dir := t.TempDir()
		s := open(t, Config{Dir: dir})
		for i := range n {
			data, h := gen(fmt.Sprint("rate ", i), chunk)
			mustPut(t, s, data, h)
		}
		s.Close()
		s = open(t, Config{Dir: dir})
		// One chunk read (so verified) after Open: the scrub leaves it for last.
		data, read := gen("rate 0", chunk)
		if got, err := s.Get(read); err != nil || len(got) != len(data) {
			t.Fatalf("Get: %d bytes, %v", len(got), err)
		}

		stop := runScrub(s, rate)
		for sec := 1; sec <= 7; sec++ {
			time.Sleep(time.Second)
			synctest.Wait()
			// Each chunk is read, then paid for: at most one chunk ahead.
			if got, limit := s.Stats().ScrubbedBytes, int64(sec*rate+chunk); got > limit {
				t.Fatalf("after %d s: scrubbed %d bytes, over the rate's %d", sec, got, limit)
			}
		}
		// Chunk i is read at i/4 s: at 7.6 s the 31 chunks not verified
		// since Open are done, and the one read is not yet re-read.
		time.Sleep(600 * time.Millisecond)
		synctest.Wait()
		s.mu.Lock()
		unverified := 0
		for _, e := range s.entries {
			if !e.verified {
				unverified++
			}
		}
		s.mu.Unlock()
		if st := s.Stats(); st.Scrubbed != n-1 || unverified != 0 {
			t.Errorf("at 7.6 s: scrubbed %d chunks, %d unverified; want the %d not read since Open first, none left", st.Scrubbed, unverified, n-1)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if st := s.Stats(); st.Scrubbed != n {
			t.Errorf("at 8.6 s: scrubbed %d chunks, want all %d", st.Scrubbed, n)
		}
		s.Close()
		if err := stop(); !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) {
			t.Errorf("Scrub after Close returned %v", err)
		}
	})
}
