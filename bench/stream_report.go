package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteReport prints the two runs side by side, then (VOD) the lower bound
// on origin egress, then the Summary line.
func (r *StreamResult) WriteReport(w io.Writer) {
	c := r.Config
	vod := c.Mode == ModeVOD
	if vod {
		bws := vodBandwidths(&c)
		ladder := make([]string, len(bws))
		for i, bw := range bws {
			ladder[i] = Mbit(float64(bw) / 8)
		}
		fmt.Fprintf(w, "stream benchmark: vod, %d viewers, %v VOD in %s renditions, %v segments, windows of %v–%v, playing %s, u_i=%s d_i=%s origin=%s, join-spread=%v churn=%.2f seed=%d\n\n",
			c.Viewers, c.VODLength, strings.Join(ladder, " / "), c.Segment, c.WatchMin, c.WatchMax,
			ladder[pickRendition(bws, c.PeerDown)], Mbit(c.PeerUp), Mbit(c.PeerDown), Mbit(c.OriginUp), c.JoinSpread, c.Churn, c.Seed)
	} else {
		fmt.Fprintf(w, "stream benchmark: %s, %d viewers, %s, %v segments, %v watched each, u_i=%s d_i=%s origin=%s, join-spread=%v churn=%.2f seed=%d\n\n",
			c.Mode, c.Viewers, Mbit(c.Bitrate), c.Segment, c.Duration, Mbit(c.PeerUp), Mbit(c.PeerDown), Mbit(c.OriginUp), c.JoinSpread, c.Churn, c.Seed)
	}
	runs := []*StreamRun{r.P2P, r.CDN}
	row := func(label string, f func(*StreamRun) string) {
		fmt.Fprintf(w, "%-26s", label)
		for _, run := range runs {
			v := "-"
			if run != nil {
				v = f(run)
			}
			fmt.Fprintf(w, " %18s", v)
		}
		fmt.Fprintln(w)
	}
	p2pOnly := func(f func(*StreamRun) string) func(*StreamRun) string {
		return func(run *StreamRun) string {
			if run.Name != "p2p" {
				return "-"
			}
			return f(run)
		}
	}
	row("", func(run *StreamRun) string {
		return map[string]string{"p2p": "P2P (Shoal)", "cdn": "CDN only"}[run.Name]
	})
	row("sessions (failed)", func(run *StreamRun) string { return fmt.Sprintf("%d (%d)", len(run.Sessions), run.Failed) })
	row("start-up P50", func(run *StreamRun) string { return ms(run.StartupP50) })
	row("start-up P95", func(run *StreamRun) string { return ms(run.StartupP95) })
	row("rebuffering total", func(run *StreamRun) string { return fmt.Sprintf("%s in %d", secs(run.StallWall), run.Stalls) })
	row("rebuffer ratio", func(run *StreamRun) string { return fmt.Sprintf("%.4f", run.RebufferRatio) })
	row("rebuffers / hour", func(run *StreamRun) string { return fmt.Sprintf("%.1f", run.StallsPerHour) })
	row("offload", func(run *StreamRun) string { return fmt.Sprintf("%.1f%%", 100*run.Offload) })
	row("origin egress", func(run *StreamRun) string { return MiB(run.OriginBytes) })
	if !vod {
		row("  × one viewer's stream", func(run *StreamRun) string { return fmt.Sprintf("%.2f", r.copies(run)) })
	}
	row("origin requests", func(run *StreamRun) string { return fmt.Sprint(run.OriginRequests) })
	if !vod {
		row("  channel updates", p2pOnly(func(run *StreamRun) string { return fmt.Sprint(run.UpdateRequests) }))
		row("  updates / segment", p2pOnly(func(run *StreamRun) string {
			return fmt.Sprintf("%.2f (%d segs)", run.UpdateRequestsPerSegment(), run.UpdateSegments)
		}))
		row("  updates / peer / segment", p2pOnly(func(run *StreamRun) string { return fmt.Sprintf("%.3f", run.UpdateRequestsPerPeerSegment()) }))
	}
	row("viewer-minutes played", func(run *StreamRun) string { return fmt.Sprintf("%.1f", run.ViewerMinutes) })
	row("origin / viewer-minute", func(run *StreamRun) string { return MiB(int64(run.OriginPerViewerMinute)) })
	row("  P2P ÷ CDN only", p2pOnly(func(*StreamRun) string { return ratio(r.OriginPerViewerMinuteRatio()) }))
	row("players received", func(run *StreamRun) string { return MiB(run.PlayerBytes) })
	if vod {
		row("media played", func(run *StreamRun) string { return MiB(run.MediaBytes) })
		row("viewers downloaded", func(run *StreamRun) string { return MiB(run.Downloaded) })
		row("  from peers", p2pOnly(func(run *StreamRun) string { return MiB(run.FromPeers) }))
		row("  from the origin", p2pOnly(func(run *StreamRun) string { return MiB(run.FromOrigin) }))
		row("  duplicates", p2pOnly(func(run *StreamRun) string { return MiB(run.Duplicates()) }))
		row("downloaded ÷ played P50", func(run *StreamRun) string { return fmt.Sprintf("%.2f", run.DownloadRatioP50) })
		row("downloaded ÷ played max", func(run *StreamRun) string { return fmt.Sprintf("%.2f", run.DownloadRatioMax) })
	}
	// How well HAVEs are batched: frames a peer sent its neighbours per
	// chunk it got, and chunks announced per frame.
	row("HAVE frames / chunk held", p2pOnly(func(run *StreamRun) string { return per(run.HaveFrames, run.Chunks, "%.2f") }))
	row("  chunks / HAVE frame", p2pOnly(func(run *StreamRun) string { return per(run.Haves, run.HaveFrames, "%.1f") }))
	row("wall time", func(run *StreamRun) string { return secs(run.Wall) })
	row("CPU while watching", func(run *StreamRun) string {
		return fmt.Sprintf("%s = %.2f cores", secs(run.CPU), run.CPUCores())
	})
	writeSteps(w, runs)
	for _, run := range runs {
		if run != nil && run.Failed > 0 {
			for _, s := range run.Sessions {
				if s.Err != "" {
					fmt.Fprintf(w, "%s: %d sessions failed; the first: viewer %d: %s\n", run.Name, run.Failed, s.Viewer, s.Err)
					break
				}
			}
		}
	}
	if vod {
		fmt.Fprintf(w, "\nlower bound on P2P origin egress: %s, the %d distinct (rendition, segment) pairs of %d that the windows cover\n",
			MiB(r.LowerBound), r.WatchedSegments, r.VODSegments)
		if r.CDN != nil {
			fmt.Fprintf(w, "  = %s × CDN-only origin egress", ratio(r.BoundOverCDN()))
			if r.P2P != nil && r.LowerBound > 0 {
				fmt.Fprintf(w, "; P2P origin egress = %.2f × the bound", float64(r.P2P.OriginBytes)/float64(r.LowerBound))
			}
			fmt.Fprintln(w)
		}
	}
	if r.P2P != nil && len(r.P2P.Cohorts) > 0 {
		r.P2P.writeCohorts(w, c.CohortSplit)
	}
	fmt.Fprintln(w, r.Summary())
}

// writeCohorts prints the A/B run by cohort: what the players measured,
// then what the tracker's fleet telemetry says.
func (run *StreamRun) writeCohorts(w io.Writer, split float64) {
	fmt.Fprintf(w, "\nA/B by cohort: the P2P run's peers obey an operator policy, experiment %s: %s %.0f%%, %s the rest with P2P off\n",
		ABExperiment, ABVariantP2P, split, ABVariantCDN)
	row := func(label string, f func(CohortRun) string) {
		fmt.Fprintf(w, "%-32s", label)
		for _, c := range run.Cohorts {
			fmt.Fprintf(w, " %18s", f(c))
		}
		fmt.Fprintln(w)
	}
	row("", func(c CohortRun) string { return cohortName(c.Cohort) })
	row("players: sessions (failed)", func(c CohortRun) string { return fmt.Sprintf("%d (%d)", len(c.Run.Sessions), c.Run.Failed) })
	row("  start-up P50", func(c CohortRun) string { return ms(c.Run.StartupP50) })
	row("  start-up P95", func(c CohortRun) string { return ms(c.Run.StartupP95) })
	row("  rebuffering total", func(c CohortRun) string { return fmt.Sprintf("%s in %d", secs(c.Run.StallWall), c.Run.Stalls) })
	row("  peers' bytes from peers", func(c CohortRun) string { return MiB(c.Run.FromPeers) })
	row("  peers' bytes from origin", func(c CohortRun) string { return MiB(c.Run.FromOrigin) })
	row("  offload (peers' bytes)", func(c CohortRun) string {
		t := c.Run.FromPeers + c.Run.FromOrigin
		if t == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(c.Run.FromPeers)/float64(t))
	})
	row("  origin / viewer-minute", func(c CohortRun) string { return MiB(int64(c.Run.OriginPerViewerMinute)) })
	row("fleet telemetry: points", func(c CohortRun) string { return fmt.Sprint(c.Fleet.Reports) })
	row("  offload", func(c CohortRun) string { return fmt.Sprintf("%.1f%%", 100*c.Fleet.Offload) })
	row("  from peers / origin", func(c CohortRun) string {
		return fmt.Sprintf("%s / %s", MiB(c.Fleet.FromPeers), MiB(c.Fleet.FromOrigin))
	})
	row("  start-ups, P95", func(c CohortRun) string { return fmt.Sprintf("%d, %s", c.Fleet.Startups, ms(c.Fleet.StartupP95)) })
	row("  rebuffering s / hour watched", func(c CohortRun) string {
		if c.Fleet.WatchS == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", c.Fleet.StallS/c.Fleet.WatchS*3600)
	})
	if run.FleetErr != "" {
		fmt.Fprintf(w, "fleet telemetry unavailable: %s\n", run.FleetErr)
	}
}

// ratio formats a ratio that is 0 when unknown.
func ratio(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", x)
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
	vod := r.Config.Mode == ModeVOD
	s := fmt.Sprintf("result stream mode=%s viewers=%d", r.Config.Mode, r.Config.Viewers)
	type kv struct {
		k string
		v any
	}
	for _, run := range []*StreamRun{r.P2P, r.CDN} {
		if run == nil {
			continue
		}
		kvs := []kv{
			{"startup_p50", fmt.Sprintf("%.3f", run.StartupP50.Seconds())},
			{"startup_p95", fmt.Sprintf("%.3f", run.StartupP95.Seconds())},
			{"rebuffer_ratio", fmt.Sprintf("%.4f", run.RebufferRatio)},
			{"rebuffers_per_hour", fmt.Sprintf("%.1f", run.StallsPerHour)},
			{"offload", fmt.Sprintf("%.4f", run.Offload)},
			{"origin_bytes", run.OriginBytes},
		}
		if !vod {
			kvs = append(kvs, kv{"origin_copies", fmt.Sprintf("%.2f", r.copies(run))})
		}
		kvs = append(kvs,
			kv{"failed", run.Failed},
			kv{"stall_seconds", fmt.Sprintf("%.3f", run.StallWall.Seconds())},
			kv{"stalls", run.Stalls},
			kv{"origin_requests", run.OriginRequests},
			kv{"viewer_minutes", fmt.Sprintf("%.2f", run.ViewerMinutes)},
			kv{"origin_bytes_per_viewer_minute", fmt.Sprintf("%.0f", run.OriginPerViewerMinute)},
			kv{"cpu_seconds", fmt.Sprintf("%.1f", run.CPU.Seconds())},
			kv{"cpu_cores", fmt.Sprintf("%.2f", run.CPUCores())},
		)
		if !vod && run.Name == "p2p" {
			kvs = append(kvs,
				kv{"update_requests", run.UpdateRequests},
				kv{"update_requests_per_segment", fmt.Sprintf("%.3f", run.UpdateRequestsPerSegment())},
				kv{"update_requests_per_peer_segment", fmt.Sprintf("%.4f", run.UpdateRequestsPerPeerSegment())},
			)
		}
		if run.Name == "p2p" {
			kvs = append(kvs, kv{"have_frames", run.HaveFrames}, kv{"haves", run.Haves}, kv{"chunks_held", run.Chunks})
		}
		if vod {
			kvs = append(kvs,
				kv{"media_bytes", run.MediaBytes},
				kv{"downloaded_bytes", run.Downloaded},
				kv{"duplicate_bytes", run.Duplicates()},
				kv{"download_ratio_p50", fmt.Sprintf("%.3f", run.DownloadRatioP50)},
				kv{"download_ratio_max", fmt.Sprintf("%.3f", run.DownloadRatioMax)},
			)
		}
		for _, x := range kvs {
			s += fmt.Sprintf(" %s_%s=%v", run.Name, x.k, x.v)
		}
	}
	if vod {
		s += fmt.Sprintf(" lower_bound_bytes=%d lower_bound_over_cdn=%.4f p2p_over_cdn_origin_per_viewer_minute=%.4f",
			r.LowerBound, r.BoundOverCDN(), r.OriginPerViewerMinuteRatio())
	}
	return s
}

// per formats a ÷ b, or "-" when b is zero.
func per(a, b int64, format string) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf(format, float64(a)/float64(b))
}
