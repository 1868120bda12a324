package policy

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

const (
	fast = 100 << 20 // bytes/s: a chunk in 2.5 ms
	slow = 1000      // bytes/s: a chunk in ~4 min
)

func TestDeadlineLaneEDFBeatsRarity(t *testing.T) {
	const n = 10
	p := newTestPicker(n, 1)
	counts := slices.Repeat([]int{3}, n)
	counts[5] = 1
	withCounts(p, counts)
	p.SetDeadline(8, at(10*time.Second))
	p.SetDeadline(3, at(5*time.Second))
	got := p.Next(t0, Source{Key: "a", Has: allBits(n), Rate: fast}, 3)
	if want := []int{3, 8, 5}; !slices.Equal(got, want) {
		t.Fatalf("Next = %v, want %v (EDF, then rarest)", got, want)
	}
	// Moving a deadline reorders the lane; clearing one returns the chunk to
	// rarest-first, where it is common and loses to chunk 5.
	p.SetDeadline(8, at(time.Second))
	p.ClearDeadline(3)
	got = p.Next(t0, Source{Key: "a", Has: allBits(n), Rate: fast}, 2)
	if want := []int{8, 5}; !slices.Equal(got, want) {
		t.Fatalf("after moving deadlines Next = %v, want %v", got, want)
	}
}

func TestSlowPeerSkippedForDeadline(t *testing.T) {
	const n = 4
	p := newTestPicker(n, 1)
	withCounts(p, []int{2, 2, 2, 2})
	p.SetDeadline(2, at(time.Second))

	got := p.Next(t0, Source{Key: "slow", Has: allBits(n), Rate: slow}, 1)
	if len(got) != 1 || got[0] == 2 {
		t.Fatalf("slow peer got %v; it cannot deliver chunk 2 in 1 s", got)
	}
	if fb := p.OriginFallback(t0, 0); !slices.Equal(fb, []int{2}) {
		t.Fatalf("OriginFallback = %v, want [2]", fb)
	}
	if got := p.Next(t0, Source{Key: "fast", Has: allBits(n), Rate: fast}, 1); !slices.Equal(got, []int{2}) {
		t.Fatalf("fast peer got %v, want [2]", got)
	}
}

func TestOriginFallbackForDeadlines(t *testing.T) {
	const n = 4
	tests := []struct {
		name  string
		setup func(p *Picker)
		now   time.Duration
		want  []int
	}{
		{"in flight to a peer that became slow", func(p *Picker) {
			p.Requested(2, "x", t0)
			p.SetRate("x", slow)
		}, 0, []int{2}},
		{"in flight to a fast peer", func(p *Picker) {
			p.Requested(2, "x", t0)
			p.SetRate("x", fast)
		}, 0, nil},
		// Past the grace period, so chunk 0 (no peer has it) goes too.
		{"slow but not urgent yet", func(p *Picker) {
			p.SetDeadline(2, at(10*time.Second))
			p.Requested(2, "x", t0)
			p.SetRate("x", slow)
		}, 7 * time.Second, []int{0}},
		{"slow and now urgent", func(p *Picker) {
			p.SetDeadline(2, at(10*time.Second))
			p.Requested(2, "x", t0)
			p.SetRate("x", slow)
		}, 8 * time.Second, []int{2, 0}},
		{"already fetched from origin", func(p *Picker) {
			p.Requested(2, Origin, t0)
		}, 0, nil},
		{"no peer has it, urgent, grace not over", func(p *Picker) {
			p.SetDeadline(0, at(time.Second))
		}, 0, []int{0, 2}},
		{"no peer has it, far deadline, grace not over, primed", func(p *Picker) {
			p.SetDeadline(2, at(time.Hour))
			p.SetDeadline(0, at(time.Minute))
			p.Requested(1, "x", t0)
		}, DefaultGrace - time.Millisecond, nil},
		// Nothing held or requested, but deadlines: no starter (a
		// player's start-up is the deadline lane's).
		{"no peer has it, far deadline, grace not over, no starter", func(p *Picker) {
			p.SetDeadline(2, at(time.Hour))
			p.SetDeadline(0, at(time.Minute))
		}, DefaultGrace - time.Millisecond, nil},
		{"no peer has it, far deadline, grace over", func(p *Picker) {
			p.SetDeadline(2, at(time.Hour))
			p.SetDeadline(0, at(time.Minute))
		}, DefaultGrace, []int{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPicker(n, 1)
			withCounts(p, []int{0, 1, 1, 1})
			p.SetDeadline(2, at(time.Second))
			tc.setup(p)
			if got := p.OriginFallback(at(tc.now), 0); !slices.Equal(got, tc.want) {
				t.Fatalf("OriginFallback = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDeadlineDuplicatedOnlyWhenInFlightSourceIsLate(t *testing.T) {
	const n = 3
	p := newTestPicker(n, 1)
	withCounts(p, []int{2, 2, 2})
	p.SetDeadline(1, at(time.Second))
	p.Requested(1, "x", t0)
	p.SetRate("x", fast)
	if got := p.Next(t0, Source{Key: "y", Has: allBits(n), Rate: fast}, 1); slices.Contains(got, 1) {
		t.Fatalf("duplicated an on-track deadline chunk: %v", got)
	}
	p.SetRate("x", slow)
	if got := p.Next(t0, Source{Key: "y", Has: allBits(n), Rate: fast}, 1); !slices.Equal(got, []int{1}) {
		t.Fatalf("Next = %v, want the late chunk [1]", got)
	}
	p.Requested(1, "y", t0)
	if c := p.Received(1, "y", at(10*time.Millisecond)); !slices.Equal(c, []PeerKey{"x"}) {
		t.Fatalf("cancel %v, want [x]", c)
	}
	if _, ok := p.Deadline(1); ok {
		t.Fatal("received chunk still in the deadline lane")
	}
}

func TestUnavailableChunkGoesToOriginAfterGrace(t *testing.T) {
	const n = 5
	p := newTestPicker(n, 1)
	withCounts(p, []int{1, 0, 1, 0, 0})
	p.Requested(0, "a", t0) // primed: no starter
	if got := p.OriginFallback(at(DefaultGrace-time.Millisecond), 0); got != nil {
		t.Fatalf("before grace: %v", got)
	}
	if got := p.OriginFallback(at(DefaultGrace), 2); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("after grace, max 2: %v, want [1 3]", got)
	}
	p.Requested(1, Origin, at(DefaultGrace))
	if err := p.Availability().AddHave(4); err != nil {
		t.Fatal(err)
	}
	if got := p.OriginFallback(at(DefaultGrace), 0); !slices.Equal(got, []int{3}) {
		t.Fatalf("after origin request and a HAVE: %v, want [3]", got)
	}
	if got := p.Next(at(DefaultGrace), Source{Key: "a", Has: allBits(n)}, n); slices.Contains(got, 1) {
		t.Fatalf("Next offered chunk 1 that is being fetched from the origin: %v", got)
	}
	p.Failed(1, Origin)
	if got := p.OriginFallback(at(DefaultGrace), 0); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("after origin failure: %v, want [1 3]", got)
	}
}

func TestExpectedArrival(t *testing.T) {
	const rate = 1 << 20 // a 256 KiB chunk every 250 ms
	ms := func(d int) time.Time { return at(time.Duration(d) * time.Millisecond) }
	p := newTestPicker(4, 1)
	p.SetRate("x", rate)
	for i := range 3 {
		p.Requested(i, "x", t0)
	}
	tests := []struct {
		name  string
		step  func()
		now   int
		chunk int
		want  int // ms after t0
	}{
		{"head", func() {}, 0, 0, 250},
		{"third in queue", func() {}, 0, 2, 750},
		{"after a delivery the queue restarts from it", func() { p.Received(0, "x", ms(300)) }, 300, 1, 550},
		{"overdue head needs another chunk time", func() {}, 2000, 1, 2250},
		{"and the rest queue behind it", func() {}, 2000, 2, 2500},
	}
	for _, tc := range tests {
		tc.step()
		got, ok := p.ExpectedArrival(tc.chunk, ms(tc.now))
		if !ok || !got.Equal(ms(tc.want)) {
			t.Errorf("%s: ExpectedArrival(%d) = %v %v, want +%dms", tc.name, tc.chunk, got.Sub(t0), ok, tc.want)
		}
	}
	if _, ok := p.ExpectedArrival(3, t0); ok {
		t.Error("ExpectedArrival of a chunk not in flight")
	}
}

// A session that holds nothing and has requested nothing gets one chunk no
// peer has before the grace is over (the starter: the one it ranks best
// for), and only one: once it is requested, nothing more until the grace
// ends. Different peers draw different starters.
func TestStarterBeforeGrace(t *testing.T) {
	const n = 64
	seen := map[int]bool{}
	for seed := range uint64(16) {
		p := NewPicker(PickerConfig{Chunks: n, Self: PeerSeed(PeerKey(fmt.Sprint("peer", seed)))})
		counts := make([]int, n)
		for i := range counts {
			if i%2 == 0 {
				counts[i] = 1 // a peer has every even chunk
			}
		}
		withCounts(p, counts)
		got := p.OriginFallback(at(0), 0)
		if len(got) != 1 || got[0]%2 == 0 {
			t.Fatalf("seed %d: starter %v, want one odd chunk", seed, got)
		}
		seen[got[0]] = true
		p.Requested(got[0], Origin, at(0))
		if again := p.OriginFallback(at(DefaultGrace/2), 0); again != nil {
			t.Fatalf("seed %d: after the starter, before grace: %v", seed, again)
		}
		if after := p.OriginFallback(at(DefaultGrace), 0); len(after) != n/2-1 {
			t.Fatalf("seed %d: after grace %d chunks, want %d", seed, len(after), n/2-1)
		}
	}
	if len(seen) < 8 {
		t.Fatalf("16 sessions drew only %d distinct starters: %v", len(seen), seen)
	}
}

// AssistPick waits for the grace period: the newcomers' starter chunks must
// not share the origin with assist fetches.
func TestAssistPickWaitsForTheGrace(t *testing.T) {
	p := newTestPicker(8, 1)
	withCounts(p, []int{1, 0, 0, 0, 0, 0, 0, 0})
	if got := p.OriginFallback(at(0), 0); len(got) != 1 {
		t.Fatalf("starter %v, want one chunk", got)
	}
	p.Requested(0, "a", at(0))
	p.Received(0, "a", at(time.Millisecond))
	if i := p.AssistPick(at(DefaultGrace-time.Millisecond), 7, nil); i != -1 {
		t.Fatalf("assist picked %d within the grace", i)
	}
	if i := p.AssistPick(at(DefaultGrace), 7, nil); i < 0 {
		t.Fatal("assist picked nothing once the grace was over")
	}
}
