package policy

import (
	"slices"
	"testing"
	"time"
)

// TestPickerFetchesOnlyWanted: a picker with an empty wanted set picks
// nothing and sends nothing to the origin, whatever peers have; wanting a
// range makes exactly that range pickable, rarest first.
func TestPickerFetchesOnlyWanted(t *testing.T) {
	const n = 32
	p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(3), Start: t0, Want: NewBitset(n)})
	withCounts(p, slices.Repeat([]int{1}, n))
	if got := p.Next(t0, Source{Key: "a", Has: allBits(n)}, n); len(got) != 0 {
		t.Fatalf("nothing wanted: Next = %v", got)
	}
	if got := p.OriginFallback(at(time.Hour), 0); len(got) != 0 {
		t.Fatalf("nothing wanted: OriginFallback = %v", got)
	}
	if !p.Satisfied() || p.Done() || p.EndGame() {
		t.Fatalf("Satisfied %v Done %v EndGame %v, want true false false", p.Satisfied(), p.Done(), p.EndGame())
	}
	for i := 8; i < 12; i++ {
		p.SetWant(i, true)
	}
	got := p.Next(t0, Source{Key: "a", Has: allBits(n)}, n)
	if !slices.Equal(sortedCopy(got), []int{8, 9, 10, 11}) {
		t.Fatalf("wanted 8..11: Next = %v", got)
	}
	if p.WantMissing() != 4 {
		t.Fatalf("WantMissing = %d, want 4", p.WantMissing())
	}
}

// TestPickerWantedOriginFallback: only wanted chunks nobody has go to the
// origin after the grace period.
func TestPickerWantedOriginFallback(t *testing.T) {
	const n = 16
	p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(1), Start: t0, Want: bitsOf(n, 3, 5)})
	if got := p.OriginFallback(at(time.Hour), 0); !slices.Equal(got, []int{3, 5}) {
		t.Fatalf("OriginFallback = %v, want [3 5]", got)
	}
}

// TestPickerEndGameCountsWantedOnly: end-game starts once every wanted
// missing chunk is in flight, however many unwanted chunks are missing.
func TestPickerEndGameCountsWantedOnly(t *testing.T) {
	const n = 16
	p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(1), Start: t0, Want: bitsOf(n, 1, 2)})
	p.Requested(1, "a", t0)
	if p.EndGame() {
		t.Fatal("end-game with wanted chunk 2 not in flight")
	}
	p.Requested(2, "a", t0)
	if !p.EndGame() {
		t.Fatal("no end-game with every wanted chunk in flight")
	}
	p.Received(1, "a", at(time.Second))
	p.SetWant(2, false)
	if p.EndGame() || !p.Satisfied() {
		t.Fatalf("after unwanting 2: EndGame %v Satisfied %v", p.EndGame(), p.Satisfied())
	}
	p.Received(2, "a", at(2*time.Second)) // an unwanted request still finishes
	if !p.Has(2) || p.WantMissing() != 0 {
		t.Fatalf("Has(2) %v WantMissing %d", p.Has(2), p.WantMissing())
	}
}

// TestPickerLostChunkIsFetchedAgain: a held chunk that is lost (evicted,
// corrupt) becomes missing, and pickable again when wanted.
func TestPickerLostChunkIsFetchedAgain(t *testing.T) {
	const n = 8
	p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(1), Start: t0, Have: allBits(n)})
	withCounts(p, slices.Repeat([]int{1}, n))
	if !p.Done() {
		t.Fatal("not done with every chunk held")
	}
	p.Lost(4)
	if p.Done() || p.Has(4) || p.Missing() != 1 || p.WantMissing() != 1 {
		t.Fatalf("after Lost(4): Done %v Has %v Missing %d WantMissing %d", p.Done(), p.Has(4), p.Missing(), p.WantMissing())
	}
	if got := p.Next(t0, Source{Key: "a", Has: allBits(n)}, n); !slices.Equal(got, []int{4}) {
		t.Fatalf("Next = %v, want [4]", got)
	}
	p.Lost(4) // not held: no-op
	if p.Missing() != 1 {
		t.Fatalf("second Lost changed Missing to %d", p.Missing())
	}
}

// TestPickerWantCountersStayConsistent drives random operations and checks
// the O(1) counters against a recount.
func TestPickerWantCountersStayConsistent(t *testing.T) {
	const n = 40
	r := seeded(7)
	p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(2), Start: t0, Want: NewBitset(n)})
	now := t0
	for step := range 5000 {
		i := r.IntN(n)
		switch r.IntN(6) {
		case 0:
			p.SetWant(i, true)
		case 1:
			p.SetWant(i, false)
		case 2:
			p.Requested(i, PeerKey([]string{"a", "b"}[r.IntN(2)]), now)
		case 3:
			p.Received(i, "a", now)
		case 4:
			p.Failed(i, "a")
		case 5:
			p.Lost(i)
		}
		now = now.Add(time.Millisecond)
		missing, flying := 0, 0
		for k := range n {
			if p.Wanted(k) && !p.Has(k) {
				missing++
				if p.InFlightTo(k) > 0 {
					flying++
				}
			}
		}
		if missing != p.wantMissing || flying != p.wantFlying {
			t.Fatalf("step %d: wantMissing %d (recount %d), wantFlying %d (recount %d)", step, p.wantMissing, missing, p.wantFlying, flying)
		}
	}
}

// TestPeerOnlyChunksWaitForUrgency: a peer-only chunk nobody has is not
// sent to the origin for the grace period alone, only once its deadline is
// urgent; without a deadline, never.
func TestPeerOnlyChunksWaitForUrgency(t *testing.T) {
	const n = 8
	p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(1), Start: t0, Want: bitsOf(n, 1, 2, 3)})
	p.SetPeerOnly(2, true)
	p.SetPeerOnly(3, true)
	p.SetDeadline(3, at(time.Minute))
	if got := p.OriginFallback(at(10*time.Second), 0); !slices.Equal(got, []int{1}) {
		t.Fatalf("after grace: OriginFallback = %v, want [1]", got)
	}
	if got := p.OriginFallback(at(time.Minute-time.Second), 0); !slices.Equal(got, []int{3, 1}) {
		t.Fatalf("deadline urgent: OriginFallback = %v, want [3 1]", got)
	}
	p.SetPeerOnly(2, false)
	if got := p.OriginFallback(at(10*time.Second), 0); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("2 no longer peer-only: OriginFallback = %v, want [1 2]", got)
	}
	// A peer that has a peer-only chunk still gets asked for it.
	withCounts(p, []int{0, 0, 1, 0, 0, 0, 0, 0})
	p.SetPeerOnly(2, true)
	if got := p.Next(at(10*time.Second), Source{Key: "a", Has: bitsOf(n, 2)}, 4); !slices.Equal(got, []int{2}) {
		t.Fatalf("Next = %v, want [2]", got)
	}
}
