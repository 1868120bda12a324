package policy

import (
	"testing"
	"time"
)

func TestPlayClockStalls(t *testing.T) {
	const s = time.Second
	type dl struct {
		seg int
		at  time.Duration // since the playback's first request
	}
	for _, tc := range []struct {
		name       string
		deliveries []dl
		startup    time.Duration
		stalls     int
		stallTime  time.Duration
	}{
		{"on-time", []dl{{0, s}, {1, 2 * s}, {2, 3 * s}, {3, 5 * s}}, s, 0, 0},
		// Segment 0 plays 1–3 s, segment 1 arrives at 4 s: 1 s stall; then
		// 1 plays 4–6 s and 2 arrives at 6 s, exactly on time.
		{"late", []dl{{0, s}, {1, 4 * s}, {2, 6 * s}}, s, 1, s},
		{"retry-is-not-a-stall", []dl{{0, s}, {0, 9 * s}, {1, 2 * s}}, s, 0, 0},
		{"seek-is-not-a-stall", []dl{{0, s}, {7, 10 * s}, {8, 11 * s}}, s, 0, 0},
		{"two-stalls", []dl{{0, 2 * s}, {1, 5 * s}, {2, 10 * s}}, 2 * s, 2, 4 * s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Unix(5000, 0)
			c := PlayClock{Begun: t0}
			for _, d := range tc.deliveries {
				c.Delivered(d.seg, 2*s, t0.Add(d.at))
			}
			if c.Startup != tc.startup || c.Stalls != tc.stalls || c.StallTime != tc.stallTime {
				t.Fatalf("startup %v stalls %d (%v), want %v %d (%v)", c.Startup, c.Stalls, c.StallTime, tc.startup, tc.stalls, tc.stallTime)
			}
		})
	}
}

// TestPlaybackStartupThenDeadlines: the first StartupSegments segment
// requests go to the origin, the look-ahead waits for the last of them,
// and later requests are due when the buffer (less BufferSafety) runs dry.
func TestPlaybackStartupThenDeadlines(t *testing.T) {
	const s = time.Second
	t0 := time.Unix(5000, 0)
	p := NewPlayback(t0)
	if st := p.Request(t0, false); !st.Direct || !st.More || !st.Due.Equal(t0) {
		t.Fatalf("init segment before start-up: %+v, want direct, more, due now", st)
	}
	var steps []Step
	at := t0
	for seg := range StartupSegments + 2 {
		st := p.Request(at, true)
		steps = append(steps, st)
		at = at.Add(s / 2)
		p.Clock.Delivered(seg, 4*s, at) // 4 s segments, each sent in 0.5 s
	}
	for k, st := range steps {
		wantDirect, wantMore := k < StartupSegments, k < StartupSegments-1
		if st.Direct != wantDirect || st.More != wantMore {
			t.Errorf("request %d: direct %v more %v, want %v %v", k, st.Direct, st.More, wantDirect, wantMore)
		}
	}
	// Request k is made at t0 + k/2 s with k × 4 s delivered since t0 + 0.5 s:
	// buffered = 0.5 + 4k − k/2 − … ; check the last one by the clock.
	last := steps[len(steps)-1]
	req := t0.Add(time.Duration(len(steps)-1) * s / 2)
	played := req.Sub(t0.Add(s / 2))
	buffered := time.Duration(len(steps)-1)*4*s - played
	if want := req.Add(buffered - BufferSafety); !last.Due.Equal(want) {
		t.Errorf("due %v, want %v (buffer %v less %v)", last.Due.Sub(t0), want.Sub(t0), buffered, BufferSafety)
	}
	if got, want := last.LateAt(), last.Due.Add(LateAfter); !got.Equal(want) {
		t.Errorf("late at %v, want %v", got, want)
	}
	if p.Requests() != len(steps) {
		t.Errorf("requests %d, want %d", p.Requests(), len(steps))
	}
}

func TestLookaheadDeadlinesFollowDurations(t *testing.T) {
	t0 := time.Unix(5000, 0)
	durs := []time.Duration{2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second, 6 * time.Second}
	dur := func(i int) time.Duration { return durs[i] }
	got := Lookahead(0, t0, len(durs), dur)
	if len(got) != LookaheadSegments {
		t.Fatalf("%d segments, want %d", len(got), LookaheadSegments)
	}
	due := t0
	for k, g := range got {
		due = due.Add(durs[k])
		if g.Seg != k+1 || !g.Due.Equal(due) {
			t.Errorf("look-ahead %d: %+v, want segment %d due %v", k, g, k+1, due.Sub(t0))
		}
	}
	if got := Lookahead(3, t0, len(durs), dur); len(got) != 1 || got[0].Seg != 4 {
		t.Errorf("near the end: %+v, want segment 4 only", got)
	}
}

func TestLiveRequest(t *testing.T) {
	t0 := time.Unix(5000, 0)
	edge := LiveEdgeDue(t0, 2*time.Second)
	if want := t0.Add(time.Duration(LiveEdgeSlack * float64(2*time.Second))); !edge.Equal(want) {
		t.Fatalf("edge due %v, want %v", edge, want)
	}
	for served := range StartupSegments {
		if st := LiveRequest(t0, edge, served, 5); !st.Direct {
			t.Errorf("segment %d of the channel: %+v, want direct (start-up)", served, st)
		}
	}
	n := StartupSegments
	if st := LiveRequest(t0, edge, n, 5); st.Direct || !st.Due.Equal(edge) {
		t.Errorf("edge segment: %+v, want due at the edge due", st)
	}
	if st := LiveRequest(edge, edge, n, 5); !st.Due.Equal(edge.Add(LiveJoinPatience)) {
		t.Errorf("edge segment asked for late: %+v, want the join patience", st)
	}
	if st := LiveRequest(t0, time.Time{}, n, 5); !st.Due.Equal(t0.Add(LiveJoinPatience)) {
		t.Errorf("old segment: %+v, want the join patience", st)
	}
	if st := LiveRequest(t0, time.Time{}, n, 0); !st.Due.IsZero() {
		t.Errorf("old segment, no peers: %+v, want due at once", st)
	}
}
