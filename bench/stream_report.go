package bench

import (
	"fmt"
	"io"
	"time"
)

// WriteReport prints the two runs side by side, then the Summary line.
func (r *StreamResult) WriteReport(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "stream benchmark: %s, %d viewers, %s, %v segments, %v watched each, u_i=%s d_i=%s origin=%s, join-spread=%v churn=%.2f seed=%d\n\n",
		c.Mode, c.Viewers, Mbit(c.Bitrate), c.Segment, c.Duration, Mbit(c.PeerUp), Mbit(c.PeerDown), Mbit(c.OriginUp), c.JoinSpread, c.Churn, c.Seed)
	runs := []*StreamRun{r.P2P, r.CDN}
	row := func(label string, f func(*StreamRun) string) {
		fmt.Fprintf(w, "%-22s", label)
		for _, run := range runs {
			v := "-"
			if run != nil {
				v = f(run)
			}
			fmt.Fprintf(w, " %18s", v)
		}
		fmt.Fprintln(w)
	}
	row("", func(run *StreamRun) string {
		return map[string]string{"p2p": "P2P (Shoal)", "cdn": "CDN only"}[run.Name]
	})
	row("sessions (failed)", func(run *StreamRun) string { return fmt.Sprintf("%d (%d)", len(run.Sessions), run.Failed) })
	row("start-up P50", func(run *StreamRun) string { return ms(run.StartupP50) })
	row("start-up P95", func(run *StreamRun) string { return ms(run.StartupP95) })
	row("rebuffer ratio", func(run *StreamRun) string { return fmt.Sprintf("%.4f", run.RebufferRatio) })
	row("rebuffers / hour", func(run *StreamRun) string { return fmt.Sprintf("%.1f", run.StallsPerHour) })
	row("offload", func(run *StreamRun) string { return fmt.Sprintf("%.1f%%", 100*run.Offload) })
	row("origin egress", func(run *StreamRun) string { return MiB(run.OriginBytes) })
	row("  × one viewer's stream", func(run *StreamRun) string { return fmt.Sprintf("%.2f", r.copies(run)) })
	row("players received", func(run *StreamRun) string { return MiB(run.PlayerBytes) })
	row("wall time", func(run *StreamRun) string { return secs(run.Wall) })
	fmt.Fprintln(w, r.Summary())
}

// copies is a run's origin egress in units of one viewer's stream.
func (r *StreamResult) copies(run *StreamRun) float64 {
	if run == nil || r.StreamBytes == 0 {
		return 0
	}
	return float64(run.OriginBytes) / float64(r.StreamBytes)
}

func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

// Summary is one machine-readable line with the figures of both runs.
func (r *StreamResult) Summary() string {
	s := fmt.Sprintf("result stream mode=%s viewers=%d", r.Config.Mode, r.Config.Viewers)
	for _, run := range []*StreamRun{r.P2P, r.CDN} {
		if run == nil {
			continue
		}
		for _, kv := range []struct {
			k string
			v any
		}{
			{"startup_p50", fmt.Sprintf("%.3f", run.StartupP50.Seconds())},
			{"startup_p95", fmt.Sprintf("%.3f", run.StartupP95.Seconds())},
			{"rebuffer_ratio", fmt.Sprintf("%.4f", run.RebufferRatio)},
			{"rebuffers_per_hour", fmt.Sprintf("%.1f", run.StallsPerHour)},
			{"offload", fmt.Sprintf("%.4f", run.Offload)},
			{"origin_bytes", run.OriginBytes},
			{"origin_copies", fmt.Sprintf("%.2f", r.copies(run))},
			{"failed", run.Failed},
		} {
			s += fmt.Sprintf(" %s_%s=%v", run.Name, kv.k, kv.v)
		}
	}
	return s
}
