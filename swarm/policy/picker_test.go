package policy

import (
	"slices"
	"testing"
	"time"
)

func TestRarestFirstChoosesRarest(t *testing.T) {
	tests := []struct {
		name   string
		counts []int
		have   []int // chunks we already hold
		peer   []int // chunks the peer has; nil = all
		max    int
		want   []int // as a set
	}{
		{"single rarest", []int{3, 3, 1, 3, 2}, nil, nil, 1, []int{2}},
		{"two rarest", []int{3, 3, 1, 3, 2}, nil, nil, 2, []int{2, 4}},
		{"rarest the peer has", []int{3, 1, 2, 3}, nil, []int{0, 2, 3}, 1, []int{2}},
		{"rarest we lack", []int{3, 1, 2, 3}, []int{1}, nil, 1, []int{2}},
		{"count zero is never offered", []int{0, 2, 2}, nil, nil, 3, []int{1, 2}},
		{"nothing to pick", []int{1, 1}, []int{0, 1}, nil, 2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := len(tc.counts)
			p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(1), Have: bitsOf(n, tc.have...)})
			withCounts(p, tc.counts)
			has := allBits(n)
			if tc.peer != nil {
				has = bitsOf(n, tc.peer...)
			}
			got := p.Next(t0, Source{Key: "a", Has: has}, tc.max)
			if !slices.Equal(sortedCopy(got), tc.want) {
				t.Fatalf("Next = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRandomTieBreakIsSeeded(t *testing.T) {
	const n = 64
	pick := func(seed uint64) []int {
		p := newTestPicker(n, seed)
		withCounts(p, slices.Repeat([]int{2}, n))
		return p.Next(t0, Source{Key: "a", Has: allBits(n)}, 3)
	}
	distinct := map[int]bool{}
	for seed := range uint64(10) {
		a, b := pick(seed), pick(seed)
		if !slices.Equal(a, b) {
			t.Fatalf("seed %d: %v then %v", seed, a, b)
		}
		distinct[a[0]] = true
	}
	if len(distinct) < 4 {
		t.Fatalf("10 seeds gave only %d distinct first picks: tie-break is not random", len(distinct))
	}
}

func TestNeverPicksChunksWeHaveOrPeerLacks(t *testing.T) {
	const n, peers = 300, 8
	r := seeded(7)
	haveInit := NewBitset(n)
	for i := range n {
		if r.IntN(3) == 0 {
			haveInit.Set(i)
		}
	}
	p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(7), Have: haveInit})
	bf := make([]*Bitset, peers)
	for k := range bf {
		bf[k] = NewBitset(n)
		for i := range n {
			if r.IntN(2) == 0 {
				bf[k].Set(i)
			}
		}
		p.Availability().AddBitfield(bf[k])
	}
	for round := 0; !p.Done() && round < 1000; round++ {
		k := round % peers
		key := PeerKey(rune('a' + k))
		got := p.Next(at(time.Duration(round)), Source{Key: key, Has: bf[k]}, 4)
		if len(got) == 0 {
			break
		}
		// The first pick is as rare as any candidate (brute force check).
		rarest := 1 << 30
		for i := range n {
			if !p.Has(i) && bf[k].Has(i) && p.InFlightTo(i) == 0 {
				rarest = min(rarest, p.Availability().Count(i))
			}
		}
		if c := p.Availability().Count(got[0]); c != rarest {
			t.Fatalf("round %d: picked %d with count %d, rarest candidate has %d", round, got[0], c, rarest)
		}
		for _, i := range got {
			if p.Has(i) || !bf[k].Has(i) {
				t.Fatalf("round %d: picked %d (have=%v, peer has=%v)", round, i, p.Has(i), bf[k].Has(i))
			}
			p.Requested(i, key, at(time.Duration(round)))
		}
		p.Received(got[0], key, at(time.Duration(round)))
	}
}

func TestEndGameDuplicatesOnlyWhenAllInFlight(t *testing.T) {
	const n = 4
	p := newTestPicker(n, 1)
	all := allBits(n)
	p.Availability().AddBitfield(all)
	p.Availability().AddBitfield(all)
	a, b := Source{Key: "a", Has: all}, Source{Key: "b", Has: all}

	first := p.Next(t0, a, 3)
	if len(first) != 3 {
		t.Fatalf("Next(a,3) = %v", first)
	}
	for _, i := range first {
		p.Requested(i, "a", t0)
	}
	if p.EndGame() {
		t.Fatal("end-game with a chunk not in flight")
	}
	got := p.Next(t0, b, 4)
	if len(got) != 1 || slices.Contains(first, got[0]) {
		t.Fatalf("before end-game Next(b) = %v, want only the one chunk not in flight", got)
	}
	last := got[0]
	p.Requested(last, "b", t0)
	if !p.EndGame() {
		t.Fatal("every missing chunk in flight but not end-game")
	}
	if early := p.Next(t0, b, 4); len(early) != 0 {
		t.Fatalf("end-game Next(b) = %v before any request is overdue, want none", early)
	}
	late := at(time.Minute) // far past every expected arrival
	dups := p.Next(late, b, 4)
	if !slices.Equal(sortedCopy(dups), sortedCopy(first)) {
		t.Fatalf("end-game Next(b) = %v, want duplicates of %v", dups, first)
	}
	if again := p.Next(late, a, 4); !slices.Equal(again, []int{last}) {
		t.Fatalf("end-game Next(a) = %v, want [%d] (never a chunk a already has requested)", again, last)
	}
	for _, i := range dups {
		p.Requested(i, "b", t0)
	}
	if capped := p.Next(late, Source{Key: "c", Has: all}, 4); !slices.Equal(capped, []int{last}) {
		t.Fatalf("end-game Next(c) = %v, want only [%d]: the others already have EndGameMaxRequests requests", capped, last)
	}
	cancel := p.Received(first[0], "b", at(time.Second))
	if !slices.Equal(cancel, []PeerKey{"a"}) {
		t.Fatalf("Received from b cancels %v, want [a]", cancel)
	}
	if p.Outstanding("a") != 2 || p.Outstanding("b") != 3 {
		t.Fatalf("outstanding a=%d b=%d, want 2 and 3", p.Outstanding("a"), p.Outstanding("b"))
	}
	if again := p.Received(first[0], "a", at(time.Second)); again != nil {
		t.Fatalf("second arrival returned cancels %v", again)
	}
}

// TestEndGameRacesASlowSource: in end-game, a measured source duplicates
// a request queued at another as soon as it would deliver the chunk before
// the holder starts sending it (with one of its own chunk times to spare),
// not only once it is overdue; the head of the holder's queue, being sent,
// only once it is overdue.
func TestEndGameRacesASlowSource(t *testing.T) {
	const n = 4
	p := newTestPicker(n, 1)
	all := allBits(n)
	for range 3 {
		p.Availability().AddBitfield(all)
	}
	const slowRate = testChunk / 2 // 2 s a chunk
	slow := Source{Key: "slow", Has: all, Rate: slowRate}
	queued := p.Next(t0, slow, n)
	if len(queued) != n {
		t.Fatalf("Next(slow) = %v, want all %d chunks", queued, n)
	}
	for _, i := range queued {
		p.Requested(i, "slow", t0)
	}
	if !p.EndGame() {
		t.Fatal("every chunk in flight but not end-game")
	}
	// The holder sends its queue from t0 + 0, 2, 4 and 6 s. An idle source
	// of its speed asked now delivers at now + 2 s, + 2 s to spare: only
	// the last is raced.
	now := at(100 * time.Millisecond) // nothing is overdue yet
	if got := p.Next(now, Source{Key: "peer", Has: all, Rate: slowRate}, n); !slices.Equal(got, queued[3:]) {
		t.Fatalf("a source as slow as the holder duplicated %v, want the back of its queue %v", got, queued[3:])
	}
	// A fast one (50 ms a chunk) races everything but the head.
	fast := Source{Key: "fast", Has: all, Rate: 20 * testChunk}
	got := p.Next(now, fast, n)
	if !slices.Equal(sortedCopy(got), sortedCopy(queued[1:])) {
		t.Fatalf("end-game Next(fast) = %v, want duplicates of the slow source's queue behind its head %v", got, queued[1:])
	}
	for _, i := range got {
		p.Requested(i, "fast", now)
	}
	if cancel := p.Received(queued[n-1], "fast", at(300*time.Millisecond)); !slices.Equal(cancel, []PeerKey{"slow"}) {
		t.Fatalf("Received from fast cancels %v, want [slow]", cancel)
	}
	if got := p.Next(at(5*time.Second), fast, n); !slices.Equal(got, queued[:1]) {
		t.Fatalf("Next(fast) once the head is overdue = %v, want %v", got, queued[:1])
	}
}

// A chunk with a deadline the holder will make is not raced: the deadline
// lane duplicates it if its flight would miss the deadline, and sooner
// than that buys nothing. One it would miss is duplicated by that lane.
func TestEndGameLeavesDueChunksToTheDeadlineLane(t *testing.T) {
	const n = 4
	p := newTestPicker(n, 1)
	all := allBits(n)
	p.Availability().AddBitfield(all)
	p.Availability().AddBitfield(all)
	const slowRate = testChunk / 2 // 2 s a chunk: delivers at 2, 4, 6 and 8 s
	for i := range n {
		p.SetDeadline(i, at(time.Duration(2*i+3)*time.Second)) // due at 3, 5, 7, 9 s
	}
	queued := p.Next(t0, Source{Key: "slow", Has: all, Rate: slowRate}, n)
	if len(queued) != n {
		t.Fatalf("Next(slow) = %v, want all %d chunks", queued, n)
	}
	for _, i := range queued {
		p.Requested(i, "slow", t0)
	}
	fast := Source{Key: "fast", Has: all, Rate: 20 * testChunk}
	if got := p.Next(at(100*time.Millisecond), fast, n); len(got) != 0 {
		t.Fatalf("a fast source duplicated %v of chunks the holder delivers by their deadlines", got)
	}
	// Chunk 3 now falls due at 5 s, before the holder would send it:
	// the deadline lane gives it to the fast source.
	p.SetDeadline(3, at(5*time.Second))
	if got := p.Next(at(100*time.Millisecond), fast, n); !slices.Equal(got, []int{3}) {
		t.Fatalf("Next(fast) with chunk 3 due before the holder sends it = %v, want [3]", got)
	}
}

func TestFailedMakesChunkPickableAgain(t *testing.T) {
	p := newTestPicker(3, 1)
	withCounts(p, []int{1, 2, 2})
	has := allBits(3)
	got := p.Next(t0, Source{Key: "a", Has: has}, 1)
	if !slices.Equal(got, []int{0}) {
		t.Fatalf("Next = %v, want [0]", got)
	}
	p.Requested(0, "a", t0)
	if got := p.Next(t0, Source{Key: "b", Has: has}, 1); slices.Contains(got, 0) {
		t.Fatalf("in-flight chunk picked again: %v", got)
	}
	p.Failed(0, "a")
	if got := p.Next(t0, Source{Key: "b", Has: has}, 1); !slices.Equal(got, []int{0}) {
		t.Fatalf("after Failed Next = %v, want [0]", got)
	}
	if p.InFlight() != 0 || p.Outstanding("a") != 0 {
		t.Fatalf("InFlight=%d Outstanding(a)=%d after Failed", p.InFlight(), p.Outstanding("a"))
	}
}

func TestPeerGoneReleasesItsRequests(t *testing.T) {
	const n = 6
	p := newTestPicker(n, 1)
	all := allBits(n)
	p.Availability().AddBitfield(all)
	for _, i := range []int{0, 1, 2} {
		p.Requested(i, "gone", t0)
	}
	p.Requested(3, "stays", t0)
	p.Requested(2, "stays", t0) // a duplicate survives its twin's release
	p.PeerGone("gone")
	p.Availability().RemoveBitfield(all)
	p.Availability().AddBitfield(all)
	got := sortedCopy(p.Next(t0, Source{Key: "new", Has: all}, n))
	if want := []int{0, 1, 4, 5}; !slices.Equal(got, want) {
		t.Fatalf("after PeerGone Next = %v, want %v", got, want)
	}
	if p.Outstanding("gone") != 0 || p.InFlight() != 2 {
		t.Fatalf("Outstanding(gone)=%d InFlight=%d", p.Outstanding("gone"), p.InFlight())
	}
	// An origin outage releases origin requests the same way.
	p.Requested(4, Origin, t0)
	p.PeerGone(Origin)
	if p.InFlightTo(4) != 0 || !slices.Contains(p.Next(t0, Source{Key: "new", Has: all}, n), 4) {
		t.Fatal("PeerGone(Origin) did not release chunk 4")
	}
}

func TestReceivedUnrequestedChunk(t *testing.T) {
	p := newTestPicker(2, 1)
	withCounts(p, []int{1, 1})
	if c := p.Received(0, Origin, t0); c != nil {
		t.Fatalf("cancels %v", c)
	}
	if got := p.Next(t0, Source{Key: "a", Has: allBits(2)}, 2); !slices.Equal(got, []int{1}) {
		t.Fatalf("Next = %v, want [1]", got)
	}
	p.Received(1, "a", t0)
	if !p.Done() || p.Next(t0, Source{Key: "a", Has: allBits(2)}, 2) != nil {
		t.Fatal("not done after receiving everything")
	}
}
