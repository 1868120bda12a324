package policy

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func bitsOf(n int, idx ...int) *Bitset {
	b := NewBitset(n)
	for _, i := range idx {
		b.Set(i)
	}
	return b
}

func allBits(n int) *Bitset {
	b := NewBitset(n)
	b.SetAll()
	return b
}

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

const testChunk = 256 << 10

func newTestPicker(n int, seed uint64) *Picker {
	return NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(seed), Start: t0})
}

// withCounts makes chunk i available from counts[i] anonymous peers.
func withCounts(p *Picker, counts []int) {
	for i, c := range counts {
		for range c {
			if err := p.Availability().AddHave(i); err != nil {
				panic(err)
			}
		}
	}
}

// checkAvail verifies Availability's invariants against a model.
func checkAvail(t *testing.T, a *Availability, counts []int, excluded map[int]bool) {
	t.Helper()
	n := a.Len()
	seen := make([]bool, n)
	for k, i := range a.order {
		if seen[i] {
			t.Fatalf("chunk %d twice in order", i)
		}
		seen[i] = true
		if int(a.pos[i]) != k {
			t.Fatalf("pos[%d]=%d, want %d", i, a.pos[i], k)
		}
	}
	top := len(a.start) - 1
	for i := range n {
		if a.Count(i) != counts[i] {
			t.Fatalf("count[%d]=%d, want %d", i, a.Count(i), counts[i])
		}
		p := a.pos[i]
		if excluded[i] {
			if p < a.start[top] {
				t.Fatalf("excluded chunk %d at %d, before %d", i, p, a.start[top])
			}
			continue
		}
		c := counts[i]
		if c >= top || p < a.start[c] || p >= a.start[c+1] {
			t.Fatalf("chunk %d count %d at %d, bucket bounds %v", i, c, p, a.start)
		}
	}
}

func sortedCopy(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
