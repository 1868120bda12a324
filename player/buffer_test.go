package player

import (
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

const sec = time.Second

// event is one step of a scripted playback: after wait (wall), either a
// download of add media finishes, or (complete) the last one did.
type event struct {
	wait     time.Duration
	add      time.Duration
	complete bool
}

func TestBufferModel(t *testing.T) {
	for _, tc := range []struct {
		name      string
		threshold time.Duration
		speed     float64
		events    []event
		tail      time.Duration // wall time after the last event
		want      Stats
	}{
		{
			name: "smooth", threshold: 4 * sec, speed: 1,
			// Start-up after two 2 s segments (1 s), then downloads keep ahead.
			events: []event{{wait: sec / 2, add: 2 * sec}, {wait: sec / 2, add: 2 * sec}, {wait: sec, add: 2 * sec}, {complete: true}},
			tail:   10 * sec,
			want:   Stats{State: Ended, Startup: sec, Played: 6 * sec, PlayWall: 6 * sec},
		},
		{
			name: "one-stall", threshold: 2 * sec, speed: 1,
			// Plays 2 s from t=1, runs dry at t=3, next segment at t=5.
			events: []event{{wait: sec, add: 2 * sec}, {wait: 4 * sec, add: 2 * sec}, {complete: true}},
			tail:   5 * sec,
			want:   Stats{State: Ended, Startup: sec, Played: 4 * sec, PlayWall: 4 * sec, Stalls: 1, StallWall: 2 * sec},
		},
		{
			name: "stall-in-progress", threshold: 2 * sec, speed: 1,
			events: []event{{wait: sec, add: 2 * sec}},
			tail:   5 * sec, // dry at t=3, still waiting at t=6
			want:   Stats{State: Stalled, Startup: sec, Played: 2 * sec, PlayWall: 2 * sec, Stalls: 1, StallWall: 3 * sec},
		},
		{
			name: "resume-needs-threshold", threshold: 4 * sec, speed: 1,
			// 4 s buffered at t=1; dry at t=5; 2 s at t=6 is not enough, 4 s at t=7 resumes.
			events: []event{{wait: sec, add: 4 * sec}, {wait: 5 * sec, add: 2 * sec}, {wait: sec, add: 2 * sec}, {complete: true}},
			tail:   10 * sec,
			want:   Stats{State: Ended, Startup: sec, Played: 8 * sec, PlayWall: 8 * sec, Stalls: 1, StallWall: 2 * sec},
		},
		{
			name: "accelerated", threshold: 4 * sec, speed: 10,
			// 10×: 6 s of media plays in 0.6 s of wall time.
			events: []event{{wait: 100 * time.Millisecond, add: 2 * sec}, {add: 2 * sec}, {add: 2 * sec}, {complete: true}},
			tail:   sec,
			want:   Stats{State: Ended, Startup: 100 * time.Millisecond, Played: 6 * sec, PlayWall: 600 * time.Millisecond},
		},
		{
			name: "short-stream-starts-on-complete", threshold: 10 * sec, speed: 1,
			events: []event{{wait: sec, add: 2 * sec}, {wait: sec, complete: true}},
			tail:   5 * sec,
			want:   Stats{State: Ended, Startup: 2 * sec, Played: 2 * sec, PlayWall: 2 * sec},
		},
		{
			name: "not-started", threshold: 4 * sec, speed: 1,
			events: []event{{wait: sec, add: 2 * sec}},
			tail:   sec,
			want:   Stats{State: Starting},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &core.ManualClock{T: time.Unix(1000, 0)}
			b := NewBuffer(tc.threshold, tc.speed, clk.Now())
			for _, e := range tc.events {
				clk.Advance(e.wait)
				if e.complete {
					b.Complete(clk.Now())
				} else {
					b.Add(clk.Now(), e.add)
				}
			}
			clk.Advance(tc.tail)
			if got := b.Stats(clk.Now()); got != tc.want {
				t.Fatalf("stats\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestBufferRatios(t *testing.T) {
	s := Stats{Played: 30 * time.Minute, PlayWall: 30 * time.Minute, Stalls: 3, StallWall: 10 * time.Minute}
	if r := s.RebufferRatio(); r != 0.25 {
		t.Errorf("rebuffer ratio %v, want 0.25", r)
	}
	if r := s.RebuffersPerHour(); r != 6 {
		t.Errorf("rebuffers per hour %v, want 6", r)
	}
	if (Stats{}).RebufferRatio() != 0 || (Stats{}).RebuffersPerHour() != 0 {
		t.Error("empty stats give non-zero ratios")
	}
}

func TestBufferDrain(t *testing.T) {
	now := time.Unix(0, 0)
	b := NewBuffer(2*sec, 2, now)
	if d := b.Drain(now, 0); d != 0 {
		t.Fatalf("drain before playing: %v", d)
	}
	b.Add(now, 10*sec)
	if d := b.Drain(now, 4*sec); d != 3*sec {
		t.Fatalf("drain 10 s → 4 s at 2×: %v, want 3s", d)
	}
	if l := b.Level(now.Add(sec)); l != 8*sec {
		t.Fatalf("level after 1 s at 2×: %v", l)
	}
}
