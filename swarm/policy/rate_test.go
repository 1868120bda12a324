package policy

import (
	"math"
	"testing"
	"time"
)

func TestRateConverges(t *testing.T) {
	tests := []struct {
		name  string
		tau   time.Duration
		every time.Duration
		bytes int64
	}{
		{"steady 100 KB/s in 10 KB samples", 0, 100 * time.Millisecond, 10_000},
		{"1 MiB/s in whole chunks", 2 * time.Second, 250 * time.Millisecond, 256 << 10},
		{"sparse samples, long tau", 20 * time.Second, time.Second, 50_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := float64(tc.bytes) / tc.every.Seconds()
			r := Rate{Tau: tc.tau}
			if r.At(t0) != 0 {
				t.Fatal("rate before any sample is not 0")
			}
			var now time.Time
			for k := range 600 {
				now = t0.Add(time.Duration(k) * tc.every)
				r.Add(now, tc.bytes)
			}
			// Read half-way between samples, where the EWMA's sawtooth is
			// closest to the mean.
			got := r.At(now.Add(tc.every / 2))
			if math.Abs(got-want)/want > 0.05 {
				t.Fatalf("rate %.0f B/s, want %.0f ±5%%", got, want)
			}
			// An idle link fades to nothing.
			tau := tc.tau
			if tau == 0 {
				tau = DefaultRateTau
			}
			if idle := r.At(now.Add(20 * tau)); idle > want*0.001 {
				t.Fatalf("after 20 tau idle rate %.0f", idle)
			}
		})
	}
}

func TestRateFollowsAChange(t *testing.T) {
	var r Rate
	now := t0
	for range 100 { // 10 s at 10 KB/s
		now = now.Add(100 * time.Millisecond)
		r.Add(now, 1000)
	}
	for range 300 { // 30 s at 100 KB/s: six time constants
		now = now.Add(100 * time.Millisecond)
		r.Add(now, 10_000)
	}
	if got := r.At(now.Add(50 * time.Millisecond)); math.Abs(got-100_000)/100_000 > 0.05 {
		t.Fatalf("rate %.0f after the step, want ~100000", got)
	}
}

func TestRateEarlyEstimateIsNotRampedDown(t *testing.T) {
	var r Rate
	for k := range 20 { // 2 s of 50 KB/s, much less than tau
		r.Add(t0.Add(time.Duration(k)*100*time.Millisecond), 5000)
	}
	if got := r.At(t0.Add(1950 * time.Millisecond)); got < 40_000 || got > 60_000 {
		t.Fatalf("early rate %.0f, want ~50000 (bias-corrected)", got)
	}
}

func TestPipelineDepth(t *testing.T) {
	tests := []struct {
		name     string
		rate     float64
		chunk    int64
		target   time.Duration
		min, max int
		want     int
	}{
		{"unmeasured gets min", 0, 256 << 10, time.Second, 2, 32, 2},
		{"rate x target in chunks", 4 << 20, 256 << 10, time.Second, 2, 32, 16},
		{"rounds up", 1 << 20, 256 << 10, 1100 * time.Millisecond, 1, 32, 5},
		{"slow floors at min", 1000, 256 << 10, time.Second, 2, 32, 2},
		{"fast caps at max", 1 << 30, 256 << 10, time.Second, 2, 32, 32},
		{"min above max: max wins", 1 << 20, 256 << 10, time.Second, 10, 4, 4},
		{"bad chunk size", 1 << 20, 0, time.Second, 3, 8, 3},
		{"NaN rate", math.NaN(), 256 << 10, time.Second, 3, 8, 3},
	}
	for _, tc := range tests {
		if got := PipelineDepth(tc.rate, tc.chunk, tc.target, tc.min, tc.max); got != tc.want {
			t.Errorf("%s: PipelineDepth = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestTokenBucket(t *testing.T) {
	ms := func(d int) time.Time { return at(time.Duration(d) * time.Millisecond) }
	b := NewTokenBucket(1000, 500, t0) // 1000 B/s, burst 500, starts full
	steps := []struct {
		name string
		op   func() any
		want any
	}{
		{"starts full", func() any { return b.Available(t0) }, 500.0},
		{"take within burst", func() any { return b.TryTake(t0, 400) }, true},
		{"not enough left", func() any { return b.TryTake(t0, 200) }, false},
		{"failed take took nothing", func() any { return b.Available(t0) }, 100.0},
		{"refills at rate", func() any { return b.Available(ms(100)) }, 200.0},
		{"wait for 700", func() any { return b.WaitFor(ms(100), 700) }, 500 * time.Millisecond},
		{"reserve into debt", func() any { return b.Reserve(ms(100), 700) }, 500 * time.Millisecond},
		{"next reservation queues behind", func() any { return b.Reserve(ms(100), 100) }, 600 * time.Millisecond},
		{"debt shown", func() any { return b.Available(ms(100)) }, -600.0},
		{"repaid after the wait", func() any { return b.Available(ms(700)) }, 0.0},
		{"caps at burst", func() any { return b.Available(ms(60_000)) }, 500.0},
		{"larger than burst is allowed", func() any { return b.Reserve(ms(60_000), 2500) }, 2 * time.Second},
		{"clock going back refills nothing", func() any { return b.Available(ms(1000)) }, -2000.0},
	}
	for _, s := range steps {
		if got := s.op(); got != s.want {
			t.Fatalf("%s: got %v, want %v", s.name, got, s.want)
		}
	}
}

func TestTokenBucketUnlimitedAndSetLimit(t *testing.T) {
	b := NewTokenBucket(0, 0, t0)
	if !b.TryTake(t0, 1<<40) || b.Reserve(t0, 1<<40) != 0 || b.WaitFor(t0, 1<<40) != 0 {
		t.Fatal("rate 0 should be unlimited")
	}
	b.SetLimit(t0, 100, 50)
	if got := b.Available(t0); got != 1 {
		// The unlimited bucket held the minimum burst of 1 token.
		t.Fatalf("after SetLimit available %v, want 1", got)
	}
	if got := b.Available(at(time.Second)); got != 50 {
		t.Fatalf("after 1 s available %v, want 50 (burst)", got)
	}
}
