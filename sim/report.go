package sim

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Report is a scenario's runs: P2P on and, for the A/B, the CDN-only
// baseline (nil when not run).
type Report struct {
	Scenario *Scenario
	On, Off  *Result
}

// WriteFiles writes summary.txt, timeseries.csv, peers.csv and report.svg
// into dir.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	for name, write := range map[string]func(io.Writer) error{
		"summary.txt":    r.WriteSummary,
		"timeseries.csv": r.WriteSeries,
		"peers.csv":      r.WritePeers,
		"report.svg":     r.WriteSVG,
	} {
		if err := writeFile(filepath.Join(dir, name), write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// pct is a percentile of completion times, "-" when nobody completed.
func pct(x *Result, q float64) string {
	d, _ := x.Completion()
	if len(d) == 0 {
		return "-"
	}
	return secs(Percentile(d, q))
}

// WriteSummary writes the short text summary, the two runs side by side.
func (r *Report) WriteSummary(w io.Writer) error {
	sc := r.Scenario
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s (%s): %s\n", sc.Name, sc.Kind, strings.TrimSpace(sc.Description))
	fmt.Fprintf(&b, "content %s in %d chunks of %s; %d peers joining over %v, %d seeds; origin %s\n",
		human(float64(sc.Content.Size)), r.On.Chunks, human(float64(r.On.ChunkSize)), sc.Joins.Count, sc.Joins.Over.D(), sc.Seeds.Count, originDesc(sc))
	runs := []*Result{r.On}
	cols := []string{"P2P on"}
	if r.Off != nil {
		runs = append(runs, r.Off)
		cols = append(cols, "CDN only")
	}
	row := func(name string, f func(*Result) string) {
		fmt.Fprintf(&b, "%-26s", name)
		for _, x := range runs {
			fmt.Fprintf(&b, " %16s", f(x))
		}
		b.WriteByte('\n')
	}
	row("", func(x *Result) string { return map[bool]string{true: "P2P on", false: "CDN only"}[x.P2P] })
	_ = cols
	row("origin egress", func(x *Result) string { return human(float64(x.OriginBytes)) })
	row("peer-to-peer traffic", func(x *Result) string { return human(float64(x.PeerBytes)) })
	row("offload", func(x *Result) string { return fmt.Sprintf("%.1f%%", 100*x.Offload()) })
	row("peak origin egress", func(x *Result) string {
		m := 0.0
		for _, s := range x.Series {
			m = max(m, s.OriginMbps)
		}
		return fmt.Sprintf("%.0f Mbit/s", m)
	})
	if sc.Kind == KindFile {
		row("completion P50", func(x *Result) string { return pct(x, 0.5) })
		row("completion P95", func(x *Result) string { return pct(x, 0.95) })
		row("completion max", func(x *Result) string { return pct(x, 1) })
		row("incomplete at end", func(x *Result) string { _, n := x.Completion(); return fmt.Sprint(n) })
	} else {
		row("start-up P50", func(x *Result) string { p, _, _, _ := x.QoE(); return secs(p) })
		row("start-up P95", func(x *Result) string { _, p, _, _ := x.QoE(); return secs(p) })
		row("rebuffer per hour", func(x *Result) string { _, _, rb, _ := x.QoE(); return secs(rb) })
		row("never started", func(x *Result) string { _, _, _, n := x.QoE(); return fmt.Sprint(n) })
	}
	row("min copies (end)", func(x *Result) string {
		if len(x.Series) == 0 {
			return "-"
		}
		return fmt.Sprint(x.Series[len(x.Series)-1].MinCopies)
	})
	row("simulated time", func(x *Result) string { return secs(x.SimTime) })
	row("events", func(x *Result) string { return fmt.Sprint(x.Events) })
	_, err := io.WriteString(w, b.String())
	return err
}

func originDesc(sc *Scenario) string {
	if sc.Origin.Off {
		return "off"
	}
	if sc.Origin.Capacity <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.0f Mbit/s", float64(sc.Origin.Capacity)*8/1e6)
}

func human(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	k := 0
	for b >= 1024 && k < len(units)-1 {
		b /= 1024
		k++
	}
	return fmt.Sprintf("%.1f %s", b, units[k])
}

// WriteSeries writes the time series as CSV, the CDN-only origin egress in
// its own column.
func (r *Report) WriteSeries(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "t_s,origin_mbps,peer_mbps,peers,complete,min_copies,rare_chunks,cdn_only_origin_mbps")
	n := len(r.On.Series)
	if r.Off != nil {
		n = max(n, len(r.Off.Series))
	}
	for k := range n {
		var s Sample
		if k < len(r.On.Series) {
			s = r.On.Series[k]
		} else {
			s.T = r.Off.Series[k].T
		}
		off := ""
		if r.Off != nil && k < len(r.Off.Series) {
			off = fmt.Sprintf("%.3f", r.Off.Series[k].OriginMbps)
		}
		fmt.Fprintf(bw, "%.1f,%.3f,%.3f,%d,%d,%d,%d,%s\n", s.T.Seconds(), s.OriginMbps, s.PeerMbps, s.Peers, s.Complete, s.MinCopies, s.Rare, off)
	}
	return bw.Flush()
}

// WritePeers writes the P2P run's per-peer outcomes as CSV.
func (r *Report) WritePeers(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "id,class,region,join_s,done_s,from_origin,from_peers,uploaded,startup_s,rebuffer_s,watched_s")
	for _, p := range r.On.Peers {
		done := ""
		if p.Done >= 0 {
			done = fmt.Sprintf("%.3f", p.Done.Seconds())
		}
		startup := ""
		if p.Started {
			startup = fmt.Sprintf("%.3f", p.Startup.Seconds())
		}
		fmt.Fprintf(bw, "%d,%s,%s,%.3f,%s,%d,%d,%d,%s,%.3f,%.3f\n", p.ID, p.Class, p.Region, p.Join.Seconds(), done,
			p.FromOrigin, p.FromPeers, p.Uploaded, startup, p.Rebuffer.Seconds(), p.Watched.Seconds())
	}
	return bw.Flush()
}
