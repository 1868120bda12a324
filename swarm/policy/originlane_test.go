package policy

import (
	"slices"
	"testing"
	"time"
)

// laneRig is a picker past its grace with n chunks nobody has, and a lane
// whose Ahead is given per chunk.
type laneRig struct {
	p       *Picker
	l       *OriginLane
	ahead   map[int]int
	started []int
	refuse  bool
	free    int // what the last Plan returned
}

func newLaneRig(n int) *laneRig {
	p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(1), Start: t0})
	return &laneRig{p: p, l: NewOriginLane(), ahead: map[int]int{}}
}

func (r *laneRig) plan(now time.Time, free int) []int {
	r.started = nil
	r.free = r.l.Plan(now, r.p, free, LaneInputs{
		Ahead: func(i int) int { return r.ahead[i] },
		Start: func(i int) bool {
			if r.refuse {
				return false
			}
			r.p.Requested(i, Origin, now)
			r.started = append(r.started, i)
			return true
		},
	})
	return r.started
}

func TestOriginLaneOwnShareFirstThenTakeoverByRank(t *testing.T) {
	r := newLaneRig(6)
	r.ahead = map[int]int{1: 1, 3: 2, 4: 1}
	now := at(DefaultGrace)
	if got := r.plan(now, 2); !slices.Equal(got, []int{0, 2}) || r.free != 0 {
		t.Fatalf("first plan started %v, left %d slots; want our own share [0 2] and 0", got, r.free)
	}
	// Slots to spare from here on: the takeover clocks start now.
	if got := r.plan(now, 4); !slices.Equal(got, []int{5}) || r.free != 3 {
		t.Fatalf("second plan started %v, left %d slots; want [5] and 3", got, r.free)
	}
	if got := r.plan(now.Add(TakeoverWait-time.Millisecond), 4); got != nil {
		t.Fatalf("took over %v before TakeoverWait", got)
	}
	if got := r.plan(now.Add(TakeoverWait), 4); !slices.Equal(got, []int{1, 4}) {
		t.Fatalf("after one wait started %v, want the rank-1 chunks [1 4]", got)
	}
	if got := r.plan(now.Add(2*TakeoverWait-time.Millisecond), 4); got != nil {
		t.Fatalf("took over %v before 2 × TakeoverWait", got)
	}
	if got := r.plan(now.Add(2*TakeoverWait), 4); !slices.Equal(got, []int{3}) {
		t.Fatalf("after two waits started %v, want the rank-2 chunk [3]", got)
	}
}

func TestOriginLaneTakeoverClockNeedsSpareSlots(t *testing.T) {
	r := newLaneRig(3)
	r.ahead = map[int]int{2: 1}
	now := at(DefaultGrace)
	r.plan(now, 2) // our two chunks fill the slots: no clock for chunk 2
	if got := r.plan(now.Add(TakeoverWait), 1); got != nil {
		t.Fatalf("took over %v though its clock never started", got)
	}
	if got := r.plan(now.Add(2*TakeoverWait), 1); !slices.Equal(got, []int{2}) {
		t.Fatalf("started %v, want [2] one wait after the clock started", got)
	}
}

func TestOriginLaneDeadlineSkipsDesignation(t *testing.T) {
	r := newLaneRig(3)
	r.ahead = map[int]int{0: 3, 1: 3, 2: 3}
	r.p.SetDeadline(1, at(time.Minute))
	if got := r.plan(at(DefaultGrace), 4); !slices.Equal(got, []int{1}) {
		t.Fatalf("started %v, want only the deadline chunk [1]", got)
	}
}

func TestOriginLaneRefusedStartEndsPlan(t *testing.T) {
	r := newLaneRig(3)
	r.refuse = true
	if got := r.plan(at(DefaultGrace), 4); got != nil || r.free != 0 {
		t.Fatalf("started %v, %d slots left, with every start refused; want none and 0", got, r.free)
	}
	r.refuse = false
	if got := r.plan(at(DefaultGrace), 4); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("started %v, want [0 1 2]", got)
	}
}

func TestOriginLaneTakeoverWaitScalesWithLatency(t *testing.T) {
	l := NewOriginLane()
	if got := l.TakeoverWait(); got != TakeoverWait {
		t.Fatalf("unmeasured: %v, want %v", got, TakeoverWait)
	}
	for range 50 {
		l.Observe(2 * time.Second)
	}
	want := TakeoverLatencyFactor * l.Latency()
	if l.Latency() < 1900*time.Millisecond || l.TakeoverWait() != want {
		t.Fatalf("latency %v, wait %v; want latency near 2s and wait %v", l.Latency(), l.TakeoverWait(), want)
	}
}

func TestOriginLaneForgetRestartsClock(t *testing.T) {
	r := newLaneRig(1)
	r.ahead = map[int]int{0: 1}
	now := at(DefaultGrace)
	r.plan(now, 1) // clock starts
	r.l.Forget(0)
	if got := r.plan(now.Add(TakeoverWait), 1); got != nil {
		t.Fatalf("took over %v on a forgotten clock", got)
	}
}
