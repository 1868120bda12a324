package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// StartupStep is one request a player made before playback started: what
// it asked for and when, since the session began, it sent the request, got
// the response's headers and its last byte.
type StartupStep struct {
	Path              string
	Sent, First, Done time.Duration
	Bytes             int64
}

// requestPath is u relative to base, the directory of the session's
// first playlist (master.m3u8, r1/index.m3u8, r1/seg-000042.ts).
func requestPath(base, u string) string {
	return strings.TrimPrefix(u, base)
}

// stepKind names the k-th start-up request of a session whose steps are
// steps: the playlists by what they are, media requests by their order.
func stepKind(steps []StartupStep, k int) string {
	if strings.HasSuffix(steps[k].Path, ".m3u8") || strings.HasSuffix(steps[k].Path, ".mpd") {
		if k == 0 && len(steps) > 1 && strings.HasSuffix(steps[1].Path, ".m3u8") {
			return "master playlist"
		}
		return "media playlist"
	}
	n := 0
	for _, s := range steps[:k+1] {
		if !strings.HasSuffix(s.Path, ".m3u8") && !strings.HasSuffix(s.Path, ".mpd") {
			n++
		}
	}
	return fmt.Sprintf("segment %d", n)
}

// StepStats is one start-up step across a run's sessions: how long the
// player waited for the response's headers (from the previous step's end,
// so the player's own gaps count) and then for its body, at the median and
// at P95, and the same for the session whose start-up is the run's P95.
type StepStats struct {
	Kind               string
	WaitP50, WaitP95   time.Duration
	BodyP50, BodyP95   time.Duration
	SlowWait, SlowBody time.Duration
	haveSlow           bool
}

// stepStats summarizes the start-up steps of sessions (those without an
// error), step by step, with the steps of the P95 start-up session.
func stepStats(sessions []Session) []StepStats {
	var ok []Session
	for _, s := range sessions {
		if s.Err == "" && len(s.Steps) > 0 {
			ok = append(ok, s)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	slices.SortStableFunc(ok, func(a, b Session) int { return int(a.Startup - b.Startup) })
	slow := ok[max(0, min(len(ok)-1, int(0.95*float64(len(ok))+0.999999)-1))]
	var out []StepStats
	for k := 0; ; k++ {
		var waits, bodies []time.Duration
		kind := ""
		for _, s := range ok {
			if k >= len(s.Steps) {
				continue
			}
			if kind == "" {
				kind = stepKind(s.Steps, k)
			}
			w, b := stepSplit(s.Steps, k)
			waits, bodies = append(waits, w), append(bodies, b)
		}
		if len(waits) == 0 {
			return out
		}
		slices.Sort(waits)
		slices.Sort(bodies)
		st := StepStats{Kind: kind, WaitP50: percentile(waits, 0.5), WaitP95: percentile(waits, 0.95),
			BodyP50: percentile(bodies, 0.5), BodyP95: percentile(bodies, 0.95)}
		if k < len(slow.Steps) {
			st.SlowWait, st.SlowBody = stepSplit(slow.Steps, k)
			st.haveSlow = true
		}
		out = append(out, st)
	}
}

// stepSplit is the k-th step's wait for headers, counted from the previous
// step's end, and the time its body took.
func stepSplit(steps []StartupStep, k int) (wait, body time.Duration) {
	var prev time.Duration
	if k > 0 {
		prev = steps[k-1].Done
	}
	return steps[k].First - prev, steps[k].Done - steps[k].First
}

// writeSteps prints the runs' start-up steps side by side.
func writeSteps(w io.Writer, runs []*StreamRun) {
	stats := make([][]StepStats, len(runs))
	n := 0
	for i, run := range runs {
		if run != nil {
			stats[i] = stepStats(run.Sessions)
			n = max(n, len(stats[i]))
		}
	}
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nstart-up, request by request (the wait for headers from the previous request's end + the body; P50, P95, and the P95 start-up session's):\n")
	for k := range n {
		kind := ""
		for _, st := range stats {
			if k < len(st) {
				kind = st[k].Kind
				break
			}
		}
		fmt.Fprintf(w, "%-26s", "  "+kind)
		for _, st := range stats {
			v := "-"
			if k < len(st) {
				s := st[k]
				v = fmt.Sprintf("%s+%s / %s+%s", msNum(s.WaitP50), msNum(s.BodyP50), msNum(s.WaitP95), msNum(s.BodyP95))
			}
			fmt.Fprintf(w, " %26s", v)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%-26s", "    P95 session")
		for _, st := range stats {
			v := "-"
			if k < len(st) && st[k].haveSlow {
				v = fmt.Sprintf("%s+%s", msNum(st[k].SlowWait), msNum(st[k].SlowBody))
			}
			fmt.Fprintf(w, " %26s", v)
		}
		fmt.Fprintln(w)
	}
}

// msNum is d in whole milliseconds, without the unit.
func msNum(d time.Duration) string { return fmt.Sprint(d.Round(time.Millisecond).Milliseconds()) }
