package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

// TestConcurrentOps runs Put, Get, ReadInto, Pin, Unpin, Delete and Has from
// many goroutines over a small set of chunks, with a quota small enough that
// evictions race with everything else. Run it with -race.
func TestConcurrentOps(t *testing.T) {
	const (
		nChunks    = 40
		size       = 2000
		workers    = 8
		opsPerWork = 300
	)
	s := open(t, Config{Quota: 15 * size, VerifyOnRead: true})
	datas := make([][]byte, nChunks)
	hashes := make([]core.Hash, nChunks)
	for i := range nChunks {
		datas[i], hashes[i] = gen(fmt.Sprint("conc ", i), size)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			pinned := map[int]int{}
			buf := make([]byte, size)
			fail := func(err error) { errs <- fmt.Errorf("worker %d: %w", w, err) }
			for range opsPerWork {
				i := r.IntN(nChunks)
				h := hashes[i]
				switch op := r.IntN(10); {
				case op < 3:
					if err := s.Put(h, datas[i]); err != nil {
						fail(err)
						return
					}
				case op < 5:
					got, err := s.Get(h)
					if err == nil && core.SumSHA256(got) != h {
						fail(fmt.Errorf("Get %d returned bytes that do not hash to its name", i))
						return
					}
					if err != nil && !errors.Is(err, ErrNotFound) {
						fail(err)
						return
					}
				case op < 6:
					n, err := s.ReadInto(h, buf)
					if err == nil && core.SumSHA256(buf[:n]) != h {
						fail(fmt.Errorf("ReadInto %d returned bytes that do not hash to its name", i))
						return
					}
					if err != nil && !errors.Is(err, ErrNotFound) {
						fail(err)
						return
					}
				case op < 7:
					s.Pin(h)
					pinned[i]++
				case op < 8:
					if pinned[i] > 0 {
						s.Unpin(h)
						pinned[i]--
					}
				case op < 9:
					if err := s.Delete(h); err != nil {
						fail(err)
						return
					}
				default:
					s.Has(h)
				}
			}
			for i, n := range pinned {
				for range n {
					s.Unpin(hashes[i])
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.Stats(); st.CorruptOnRead != 0 || st.Hits == 0 || st.Evictions == 0 {
		t.Errorf("Stats = %+v: want hits and evictions, nothing corrupt", st)
	}
	if b, _ := s.Usage(); b > int64(DefaultHighWater*15*size) {
		t.Errorf("usage %d above the high watermark once all pins are gone", b)
	}
	checkDiskMatchesIndex(t, s)
}

// TestConcurrentPutsOfOneChunkWriteOnce: racing Puts of the same chunk are
// serialised, so the chunk is written and counted once.
func TestConcurrentPutsOfOneChunkWriteOnce(t *testing.T) {
	s := open(t, Config{})
	data, h := gen("popular", 10_000)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if err := s.Put(h, data); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if st := s.Stats(); st.Puts != 1 {
		t.Errorf("Puts = %d, want 1", st.Puts)
	}
	if b, n := s.Usage(); b != 10_000 || n != 1 {
		t.Errorf("Usage = %d, %d; want 10000, 1", b, n)
	}
	checkDiskMatchesIndex(t, s)
}
