package store

import (
	"fmt"
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

const evSize = 1000 // bytes per chunk in eviction tests

func evChunk(i int) ([]byte, core.Hash) { return gen(fmt.Sprint("ev ", i), evSize) }

func TestEvictionKeepsUsageWithinQuota(t *testing.T) {
	const quota = 20 * evSize
	s := open(t, Config{Quota: quota})
	high := int64(DefaultHighWater * quota)
	for i := range 300 {
		data, h := evChunk(i)
		mustPut(t, s, data, h)
		if b, _ := s.Usage(); b > high {
			t.Fatalf("after Put %d: usage %d above high watermark %d", i, b, high)
		}
		if !s.Has(h) {
			t.Fatalf("chunk %d evicted by its own Put", i)
		}
	}
	st := s.Stats()
	if st.Evictions < 300-20 || st.EvictedBytes != st.Evictions*evSize {
		t.Errorf("Stats = %+v, want at least %d evictions of %d bytes", st, 300-20, evSize)
	}
	if st.QuotaExceeded != 0 {
		t.Errorf("QuotaExceeded = %d with nothing pinned", st.QuotaExceeded)
	}
	checkDiskMatchesIndex(t, s)
}

// TestEvictionOrder: a quota of 10 chunks evicts when the 10th arrives (above
// 9.5) down to 8.5, so exactly the two least recently used unpinned chunks go.
func TestEvictionOrder(t *testing.T) {
	s := open(t, Config{Quota: 10 * evSize})
	var hs []core.Hash
	for i := range 9 {
		data, h := evChunk(i)
		mustPut(t, s, data, h)
		hs = append(hs, h)
	}
	if _, err := s.Get(hs[0]); err != nil { // oldest becomes most recent
		t.Fatal(err)
	}
	s.Pin(hs[1])
	data, h := evChunk(9)
	mustPut(t, s, data, h)
	hs = append(hs, h)

	gone := map[int]bool{2: true, 3: true}
	for i, h := range hs {
		if s.Has(h) == gone[i] {
			t.Errorf("chunk %d: Has = %v, want %v", i, !gone[i], !gone[i])
		}
	}
	if st := s.Stats(); st.Evictions != 2 {
		t.Errorf("Evictions = %d, want 2", st.Evictions)
	}
	if b, n := s.Usage(); b != 8*evSize || n != 8 {
		t.Errorf("Usage = %d, %d; want %d, 8", b, n, 8*evSize)
	}
}

// TestPinBeforeFetch: a chunk pinned before it is stored survives any amount of
// churn; once unpinned it ages out like the rest.
func TestPinBeforeFetch(t *testing.T) {
	s := open(t, Config{Quota: 10 * evSize})
	keep, kh := gen("wanted", evSize)
	s.Pin(kh)
	s.Pin(kh) // two users
	mustPut(t, s, keep, kh)
	churn := func(from int) {
		for i := from; i < from+50; i++ {
			data, h := evChunk(i)
			mustPut(t, s, data, h)
		}
	}
	churn(0)
	if !s.Has(kh) {
		t.Fatal("pinned chunk evicted")
	}
	s.Unpin(kh)
	churn(100)
	if !s.Has(kh) {
		t.Fatal("chunk evicted while one pin remained")
	}
	s.Unpin(kh)
	churn(200)
	if s.Has(kh) {
		t.Fatal("unpinned chunk never evicted")
	}
	s.Unpin(kh) // extra Unpin is harmless
}

func TestQuotaExceededWhenAllPinned(t *testing.T) {
	s := open(t, Config{Quota: 5 * evSize})
	var hs []core.Hash
	for i := range 8 {
		data, h := evChunk(i)
		s.Pin(h)
		mustPut(t, s, data, h) // must succeed: pinned data is needed
		hs = append(hs, h)
	}
	for i, h := range hs {
		if !s.Has(h) {
			t.Errorf("pinned chunk %d evicted", i)
		}
	}
	b, _ := s.Usage()
	st := s.Stats()
	if b != 8*evSize || st.Evictions != 0 {
		t.Fatalf("usage %d, evictions %d; want %d, 0", b, st.Evictions, 8*evSize)
	}
	// Over quota (5000) after the 6th, 7th and 8th Put.
	if st.QuotaExceeded != 3 {
		t.Errorf("QuotaExceeded = %d, want 3", st.QuotaExceeded)
	}
	// Unpinning lets the store shrink back at once.
	for _, h := range hs {
		s.Unpin(h)
	}
	if b, _ := s.Usage(); b > int64(DefaultLowWater*5*evSize) {
		t.Errorf("after unpinning, usage %d above the low watermark", b)
	}
}

// TestOpenEvictsWhenOverQuota: a directory bigger than a newly lowered quota is
// trimmed at Open.
func TestOpenEvictsWhenOverQuota(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	for i := range 20 {
		data, h := evChunk(i)
		mustPut(t, s, data, h)
	}
	s.Close()
	s2 := open(t, Config{Dir: dir, Quota: 10 * evSize})
	if b, _ := s2.Usage(); b > int64(DefaultLowWater*10*evSize) {
		t.Fatalf("usage %d after Open with quota %d", b, 10*evSize)
	}
	checkDiskMatchesIndex(t, s2)
}
