package agent

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// simPlaybackTrace is the simulator's viewer's playback, written by
// sim.TestSimViewerRunsThePlaybackRules.
const simPlaybackTrace = "../sim/testdata/playback-vod.trace"

// TestGatewayPlaybackFollowsTheSimTrace replays the requests and sends of
// the simulator's on-demand viewer (the trace's "request" and "sent"
// lines, at their times) through the gateway's playback code — the
// playbacks' plan and sent that serveSegment calls — on a manual clock,
// and checks that the gateway decides what the simulator's viewer decided:
// which requests go straight to the origin, when each is due and late,
// and which segments the look-ahead prefetches, with which deadlines, set
// when. The simulator's side of the comparison is
// sim.TestSimViewerRunsThePlaybackRules, which holds its viewer to the same
// trace: a constant or a rule changed on one side only fails one of them.
func TestGatewayPlaybackFollowsTheSimTrace(t *testing.T) {
	f, err := os.Open(simPlaybackTrace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t0 := time.Unix(1_000_000, 0)
	clock := &core.ManualClock{T: t0}
	pb := newPlaybacks(clock)
	k := playKey{client: "trace", rendition: "v"}
	var (
		rend  manifest.Rendition
		dur   time.Duration
		s     *playback
		plan  segmentPlan
		want  strings.Builder
		got   strings.Builder
		lines int
	)
	at := func(line string) (time.Duration, []string) {
		fs := strings.Fields(line)
		var sec float64
		if _, err := fmt.Sscanf(fs[0], "%f", &sec); err != nil {
			t.Fatalf("trace line %q: %v", line, err)
		}
		return time.Duration(sec * float64(time.Second)).Round(time.Millisecond), fs
	}
	seg := func(field string) int {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSuffix(field, ":"), "%d", &n); err != nil {
			t.Fatalf("trace segment %q: %v", field, err)
		}
		return n
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		want.WriteString(line + "\n")
		lines++
		if strings.HasPrefix(line, "rendition ") {
			var n int
			var d float64
			if _, err := fmt.Sscanf(line, "rendition %d segments of %f s", &n, &d); err != nil {
				t.Fatalf("trace header %q: %v", line, err)
			}
			dur = time.Duration(d * float64(time.Second))
			rend = manifest.Rendition{ID: "v", Segments: make([]manifest.MediaSegment, n)}
			for i := range rend.Segments {
				rend.Segments[i] = manifest.MediaSegment{Path: fmt.Sprintf("v/%d.ts", i), DurationMs: dur.Milliseconds(), Seq: int64(i)}
			}
			got.WriteString(line + "\n")
			continue
		}
		d, fs := at(line)
		clock.T = t0.Add(d)
		switch fs[1] {
		case "request":
			i := seg(fs[2])
			s, plan = pb.plan(k, &rend, i)
			st := plan.Step
			kind := "deadline"
			if st.Direct {
				kind = "direct"
				if st.More {
					kind += " more"
				}
			}
			fmt.Fprintf(&got, "%s request %d: %s due %.3f", fs[0], i, kind, st.Due.Sub(t0).Seconds())
			if !st.Direct {
				fmt.Fprintf(&got, " late %.3f", plan.late.Sub(t0).Seconds())
			}
			got.WriteString("\n")
			if plan.aheadNow {
				writeAhead(&got, fs[0], i, plan.ahead, t0)
			}
		case "sent":
			i := seg(fs[2])
			if s == nil {
				t.Fatalf("trace sends segment %d before any request", i)
			}
			pb.sent(s, i, dur, 0, 0, 0)
			fmt.Fprintf(&got, "%s sent %d\n", fs[0], i)
			if plan.aheadAfter {
				writeAhead(&got, fs[0], i, plan.ahead, t0)
			}
		case "ahead":
			// Written by the request or send before it.
		default:
			t.Fatalf("trace line %q: unknown event %q", line, fs[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines < 10 || rend.Segments == nil {
		t.Fatalf("%s: %d lines, rendition %v: not a playback trace", simPlaybackTrace, lines, rend.Segments != nil)
	}
	if got.String() != want.String() {
		t.Fatalf("the gateway decided otherwise than the simulator's viewer (%s):\n--- simulator\n%s--- gateway\n%s", simPlaybackTrace, want.String(), got.String())
	}
	// Independent of both: the rules' constants show in the trace.
	if want := policy.StartupSegments; strings.Count(got.String(), ": direct") != want {
		t.Errorf("%d start-up requests straight from the origin, want policy.StartupSegments = %d", strings.Count(got.String(), ": direct"), want)
	}
}

func writeAhead(b *strings.Builder, at string, seg int, ahead []policy.SegmentDue, t0 time.Time) {
	fmt.Fprintf(b, "%s ahead %d: ", at, seg)
	if len(ahead) == 0 {
		b.WriteString("none\n")
		return
	}
	for k, a := range ahead {
		if k > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(b, "%d@%.3f", a.Seg, a.Due.Sub(t0).Seconds())
	}
	b.WriteString("\n")
}
