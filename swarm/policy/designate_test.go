package policy

import (
	"slices"
	"testing"
	"time"
)

// TestOriginRankMatchesSessionFormula pins the rank to the formula the swarm
// session used before it was factored out, so peers of different builds
// still agree on who fetches what.
func TestOriginRankMatchesSessionFormula(t *testing.T) {
	for _, k := range []PeerKey{"a", "peer-12", "12D3KooW"} {
		seed := PeerSeed(k)
		for i := range 50 {
			want := Mix64(seed ^ uint64(i)*0x9e3779b97f4a7c15)
			if got := OriginRank(seed, i); got != want {
				t.Fatalf("OriginRank(%q, %d) = %x, want %x", k, i, got, want)
			}
		}
	}
}

// TestExactlyOneDesignated: among a fully connected group every peer
// computes the same answer, so each chunk has exactly one designated peer,
// and the load spreads over the group.
func TestExactlyOneDesignated(t *testing.T) {
	keys := []PeerKey{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"}
	seeds := make([]uint64, len(keys))
	for k, key := range keys {
		seeds[k] = PeerSeed(key)
	}
	load := make([]int, len(keys))
	for i := range 400 {
		n := 0
		for k := range keys {
			rivals := slices.Delete(slices.Clone(seeds), k, k+1)
			d := Designated(seeds[k], i, slices.Values(rivals))
			if d {
				n++
				load[k]++
			}
			if ahead := Ahead(seeds[k], i, slices.Values(rivals)); (ahead == 0) != d {
				t.Fatalf("chunk %d peer %d: Ahead = %d but Designated = %v", i, k, ahead, d)
			}
		}
		if n != 1 {
			t.Fatalf("chunk %d: %d designated peers, want 1", i, n)
		}
	}
	for k, l := range load {
		if l < 20 {
			t.Errorf("peer %d designated for %d of 400 chunks: load not spread", k, l)
		}
	}
	// The k-th ranked peer sees k rivals ahead: ranks are a total order.
	var aheads []int
	for k := range keys {
		aheads = append(aheads, Ahead(seeds[k], 7, slices.Values(slices.Delete(slices.Clone(seeds), k, k+1))))
	}
	slices.Sort(aheads)
	if !slices.Equal(aheads, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("Ahead over the group = %v, want 0..7", aheads)
	}
	if !Designated(seeds[0], 3, nil) {
		t.Error("a peer with no rivals must be designated")
	}
}

func TestSequentialOrderPicksLowestIndex(t *testing.T) {
	const n = 64
	for _, tc := range []struct {
		order Order
		seq   bool
	}{{RarestFirst, false}, {Sequential, true}} {
		p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(3), Order: tc.order})
		counts := make([]int, n)
		for i := range counts {
			counts[i] = 1 + i%5 // the rarest chunks are spread over the range
		}
		withCounts(p, counts)
		p.Received(0, "x", t0)
		got := p.Next(t0, Source{Key: "a", Has: allBits(n)}, 4)
		if isSeq := slices.Equal(got, []int{1, 2, 3, 4}); isSeq != tc.seq {
			t.Errorf("order %d: Next = %v, sequential = %v, want %v", tc.order, got, isSeq, tc.seq)
		}
	}
}

func TestEdgeHidesUnpublishedChunks(t *testing.T) {
	const n = 16
	p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(4), Start: t0, Grace: time.Second})
	p.SetEdge(4)
	withCounts(p, slices.Repeat([]int{1}, n))
	p.SetDeadline(9, at(time.Second)) // urgent, but not published
	got := p.Next(at(0), Source{Key: "a", Has: allBits(n)}, n)
	slices.Sort(got)
	if !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("Next = %v, want the published chunks 0..3", got)
	}
	for _, i := range got {
		p.Requested(i, "a", at(0))
	}
	// Nobody has 4..15 and grace is over, but only published chunks go to
	// the origin.
	p2 := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(4), Start: t0, Grace: time.Second})
	p2.SetEdge(6)
	p2.SetDeadline(9, at(time.Second))
	if got := p2.OriginFallback(at(10*time.Second), 0); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("OriginFallback = %v, want 0..5", got)
	}
	p2.SetEdge(10)
	if got := p2.OriginFallback(at(10*time.Second), 0); !slices.Equal(got, []int{9, 0, 1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("after SetEdge(10): OriginFallback = %v, want deadline chunk 9 first, then 0..8", got)
	}
	if p2.Edge() != 10 {
		t.Fatalf("Edge = %d", p2.Edge())
	}
}
