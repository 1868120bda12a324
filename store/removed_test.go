package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

// removals records what an OnRemove listener was told, in order.
type removals struct {
	mu  sync.Mutex // guards got
	got []core.Hash
}

func (r *removals) add(h core.Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, h)
}

func (r *removals) list() []core.Hash {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// record registers a listener for the rest of the test.
func record(t *testing.T, s *Store) *removals {
	t.Helper()
	r := &removals{}
	t.Cleanup(s.OnRemove(r.add))
	return r
}

func sameSet(a, b []core.Hash) bool {
	sort := func(hs []core.Hash) []core.Hash {
		hs = slices.Clone(hs)
		slices.SortFunc(hs, func(x, y core.Hash) int { return bytes.Compare(x[:], y[:]) })
		return hs
	}
	return slices.Equal(sort(a), sort(b))
}

// TestOnRemoveReportsEvictions: the listener hears exactly the chunks eviction
// took, each once, and nothing that is still present.
func TestOnRemoveReportsEvictions(t *testing.T) {
	s := open(t, Config{Quota: 10 * evSize})
	r := record(t, s)
	var hs []core.Hash
	for i := range 9 {
		data, h := evChunk(i)
		mustPut(t, s, data, h)
		hs = append(hs, h)
	}
	if got := r.list(); len(got) != 0 {
		t.Fatalf("removals %v before the store reached its quota", got)
	}
	if _, err := s.Get(hs[0]); err != nil { // oldest becomes most recent
		t.Fatal(err)
	}
	s.Pin(hs[1])
	data, h := evChunk(9)
	mustPut(t, s, data, h) // evicts the two least recently used unpinned: 2 and 3
	hs = append(hs, h)
	if got, want := r.list(), []core.Hash{hs[2], hs[3]}; !sameSet(got, want) {
		t.Fatalf("removals = %v, want %v", got, want)
	}

	// Under churn, what was reported is exactly what is gone, once each.
	for i := 10; i < 100; i++ {
		data, h := evChunk(i)
		mustPut(t, s, data, h)
		hs = append(hs, h)
	}
	got := r.list()
	var gone []core.Hash
	for _, h := range hs {
		if !s.Has(h) {
			gone = append(gone, h)
		}
	}
	if !sameSet(got, gone) {
		t.Fatalf("%d removals reported, %d chunks gone; want the same set", len(got), len(gone))
	}
	if st := s.Stats(); int64(len(got)) != st.Evictions {
		t.Errorf("%d removals reported, Stats.Evictions = %d", len(got), st.Evictions)
	}
}

func TestOnRemoveReportsDelete(t *testing.T) {
	s := open(t, Config{})
	r := record(t, s)
	data, h := gen("deleted", 1000)
	mustPut(t, s, data, h)
	if err := s.Delete(h); err != nil {
		t.Fatal(err)
	}
	if got := r.list(); !slices.Equal(got, []core.Hash{h}) {
		t.Fatalf("removals = %v, want [%s]", got, h.Short())
	}
	// Deleting what is absent removes nothing, so reports nothing.
	_, never := gen("never stored", 1000)
	if err := s.Delete(h); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(never); err != nil {
		t.Fatal(err)
	}
	if got := r.list(); len(got) != 1 {
		t.Fatalf("removals = %v after deleting absent chunks, want only the first", got)
	}
}

// TestOnRemoveReportsDamageFoundByRead: a read that drops a chunk (corrupt or
// gone from disk) reports it, so peers stop being offered it.
func TestOnRemoveReportsDamageFoundByRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		verify  bool
		damage  func(path string, data []byte) error
		wantErr error
	}{
		{"flipped byte, verify", true, func(p string, b []byte) error {
			b = bytes.Clone(b)
			b[len(b)/2] ^= 1
			return os.WriteFile(p, b, 0o644)
		}, ErrCorrupt},
		{"truncated", false, func(p string, b []byte) error { return os.WriteFile(p, b[:len(b)-1], 0o644) }, ErrCorrupt},
		{"removed behind our back", false, func(p string, _ []byte) error { return os.Remove(p) }, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, Config{VerifyOnRead: tc.verify})
			r := record(t, s)
			data, h := gen(tc.name, 50_000)
			mustPut(t, s, data, h)
			if err := tc.damage(s.path(h), data); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(h); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Get = %v, want %v", err, tc.wantErr)
			}
			if got := r.list(); !slices.Equal(got, []core.Hash{h}) {
				t.Fatalf("removals = %v, want [%s]", got, h.Short())
			}
			// A second read misses without reporting again.
			if _, err := s.Get(h); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second Get = %v, want ErrNotFound", err)
			}
			if got := r.list(); len(got) != 1 {
				t.Fatalf("removals = %v after a second read, want one", got)
			}
		})
	}
}

// TestOnRemoveSilentForFailedWriteAndClose: a Put that never made its chunk
// present, a rejected Put, and Close remove nothing a peer could have been
// told about.
func TestOnRemoveSilentForFailedWriteAndClose(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	r := record(t, s)
	kept, kh := gen("kept", 1000)
	mustPut(t, s, kept, kh)

	data, h := gen("unwritable", 1000)
	// A plain file where h's shard directory should be makes the rename fail.
	shard := filepath.Dir(s.path(h))
	if shard == filepath.Dir(s.path(kh)) {
		t.Fatal("test chunks share a shard; pick other names")
	}
	if err := os.WriteFile(shard, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(h, data); err == nil {
		t.Fatal("Put into a blocked shard succeeded")
	}
	if s.Has(h) {
		t.Fatal("failed Put left the chunk present")
	}
	if err := s.Put(h, kept); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Put of wrong bytes = %v, want ErrHashMismatch", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := r.list(); len(got) != 0 {
		t.Fatalf("removals = %v, want none", got)
	}
}

func TestOnRemoveCancel(t *testing.T) {
	s := open(t, Config{})
	var kept, dropped removals
	cancelKept := s.OnRemove(kept.add)
	defer cancelKept()
	cancel := s.OnRemove(dropped.add)
	cancel()
	cancel() // harmless

	// A listener may cancel itself (and so must not deadlock doing it).
	var self removals
	var cancelSelf func()
	cancelSelf = s.OnRemove(func(h core.Hash) {
		self.add(h)
		cancelSelf()
	})

	var hs []core.Hash
	for i := range 3 {
		data, h := gen(fmt.Sprint("cancel ", i), 1000)
		mustPut(t, s, data, h)
		if err := s.Delete(h); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if got := dropped.list(); len(got) != 0 {
		t.Errorf("cancelled listener called for %v", got)
	}
	if got := self.list(); !slices.Equal(got, hs[:1]) {
		t.Errorf("self-cancelling listener heard %v, want only the first removal %s", got, hs[0].Short())
	}
	if got := kept.list(); !slices.Equal(got, hs) {
		t.Errorf("live listener heard %v, want %v", got, hs)
	}
}

// TestOnRemoveListenerMayCallStore: listeners run with no store lock held, so
// they can query and change the store (a swarm checks Has before sending
// DONT_HAVE; a fetcher may pin what it will re-fetch).
func TestOnRemoveListenerMayCallStore(t *testing.T) {
	s := open(t, Config{Quota: 10 * evSize})
	var mu sync.Mutex // guards stillThere and calls
	var stillThere []core.Hash
	calls := 0
	defer s.OnRemove(func(h core.Hash) {
		has := s.Has(h)
		s.Pin(h)
		s.Unpin(h) // may itself evict, and so re-enter this listener
		s.Usage()
		mu.Lock()
		defer mu.Unlock()
		calls++
		if has {
			stillThere = append(stillThere, h)
		}
	})()
	for i := range 40 {
		data, h := evChunk(i)
		mustPut(t, s, data, h)
	}
	data, h := evChunk(0)
	mustPut(t, s, data, h)
	if err := s.Delete(h); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls == 0 {
		t.Fatal("listener never called")
	}
	if len(stillThere) != 0 {
		t.Errorf("listener saw Has true for %d removed chunks", len(stillThere))
	}
}

// TestPinnedChunkSurvivesEviction: churn far past the quota never evicts (nor
// reports) a pinned chunk; once unpinned it ages out and is reported.
func TestPinnedChunkSurvivesEviction(t *testing.T) {
	s := open(t, Config{Quota: 10 * evSize})
	r := record(t, s)
	keep, kh := gen("pinned", evSize)
	mustPut(t, s, keep, kh) // oldest in LRU order: the first eviction candidate
	s.Pin(kh)
	for i := range 100 {
		data, h := evChunk(i)
		mustPut(t, s, data, h)
	}
	if got, err := s.Get(kh); err != nil || !bytes.Equal(got, keep) {
		t.Fatalf("pinned chunk: Get = %v", err)
	}
	if slices.Contains(r.list(), kh) {
		t.Fatal("pinned chunk reported removed")
	}
	if st := s.Stats(); st.Evictions == 0 {
		t.Fatal("churn evicted nothing; the test no longer exercises eviction")
	}
	s.Unpin(kh)
	for i := 100; i < 200; i++ {
		data, h := evChunk(i)
		mustPut(t, s, data, h)
	}
	if s.Has(kh) {
		t.Fatal("unpinned chunk never evicted")
	}
	if n := slices.Index(r.list(), kh); n < 0 {
		t.Fatal("eviction of the unpinned chunk not reported")
	}
}

// TestOnRemoveConcurrent races Put, Get, Delete, Pin/Unpin and quota evictions
// with listeners being added and cancelled. Run it with -race. Every chunk that
// became present is either still present or was reported removed exactly once
// per time it left.
func TestOnRemoveConcurrent(t *testing.T) {
	const (
		nChunks    = 40
		size       = 2000
		workers    = 8
		opsPerWork = 300
	)
	s := open(t, Config{Quota: 15 * size, VerifyOnRead: true})
	var mu sync.Mutex // guards removed
	removed := map[core.Hash]int{}
	defer s.OnRemove(func(h core.Hash) {
		s.Has(h) // calling back in while others hold the store's locks
		mu.Lock()
		removed[h]++
		mu.Unlock()
	})()
	datas := make([][]byte, nChunks)
	hashes := make([]core.Hash, nChunks)
	known := map[core.Hash]bool{}
	for i := range nChunks {
		datas[i], hashes[i] = gen(fmt.Sprint("onremove conc ", i), size)
		known[hashes[i]] = true
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			pinned := map[int]int{}
			for range opsPerWork {
				i := r.IntN(nChunks)
				h := hashes[i]
				var err error
				switch op := r.IntN(10); {
				case op < 4:
					err = s.Put(h, datas[i])
				case op < 6:
					if _, err = s.Get(h); errors.Is(err, ErrNotFound) {
						err = nil
					}
				case op < 7:
					err = s.Delete(h)
				case op < 8:
					s.Pin(h)
					pinned[i]++
				case op < 9:
					if pinned[i] > 0 {
						s.Unpin(h)
						pinned[i]--
					}
				default:
					s.OnRemove(func(core.Hash) {})() // churn the listener set
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
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

	mu.Lock()
	defer mu.Unlock()
	total := 0
	for h, n := range removed {
		if !known[h] {
			t.Errorf("removal reported for unknown chunk %s", h.Short())
		}
		total += n
	}
	_, present := s.Usage()
	if st := s.Stats(); int64(total) != st.Puts-int64(present) {
		t.Errorf("%d removals reported; %d chunks written, %d present: want %d", total, st.Puts, present, st.Puts-int64(present))
	}
	checkDiskMatchesIndex(t, s)
}
