package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// The netbed benchmark runs real processes on an emulated network: a star
// of Linux network namespaces joined by a bridge, each link shaped with
// tc tbf (the origin's upload; each receiver's upload and download). The
// origin is `shoal origin` and the tracker `shoal tracker`, both in the
// origin's namespace behind its link; every receiver is a `shoal get
// --tracker` in a namespace of its own, all started at once, each seeding
// until the last one is done. With aria2 and mktorrent installed, the same
// network then carries a BitTorrent run (one aria2 seed in the origin's
// namespace, aria2 receivers), side by side. Addresses come from
// 198.18.0.0/15, the range set aside for benchmark networks; every
// namespace the benchmark makes is deleted when it ends, also when it is
// interrupted, and a later run removes those a killed run left.

// Netbed clients.
const (
	ClientShoal = "shoal"
	ClientAria2 = "aria2"
)

// NetbedConfig is one netbed benchmark.
type NetbedConfig struct {
	Receivers int     // N
	Size      int64   // F
	ChunkSize int64   // the published chunk size (BitTorrent's piece size too)
	OriginUp  float64 // bytes/s
	PeerUp    float64 // bytes/s
	PeerDown  float64 // bytes/s
	Runs      int     // runs per client; the report gives medians
	Clients   []string
	Seed      uint64
	// GetArgs are extra flags for every receiver's `shoal get`.
	GetArgs []string
	// OriginServer is what serves the layout to Shoal's receivers:
	// OriginNginx (the default: a stock nginx with the documented server
	// block, deploy/nginx) or OriginShoal (`shoal origin`).
	OriginServer string
	// Shoal is the shoal binary the processes run (default: this one).
	Shoal string
	// Dir holds the layout, caches and outputs (default: a temp dir).
	Dir string
	// Timeout bounds one run (default 10 minutes).
	Timeout  time.Duration
	Progress func(string)
}

// Origin servers for NetbedConfig.OriginServer.
const (
	OriginNginx = "nginx"
	OriginShoal = "shoal"
)

// NetbedRun is one run of one client.
type NetbedRun struct {
	Client string
	// Done and FirstByte are each receiver's times from the start of the
	// run (sorted); FirstByte is empty where the client does not report it.
	Done      []time.Duration
	FirstByte []time.Duration
	Completed int
	Receivers int
	// OriginEgress is what left the origin's namespace (its veth's
	// transmit counter: payload, headers and the tracker's few bytes);
	// OriginServed is what the origin itself counted (nginx's access log,
	// or `shoal origin`'s metrics), where it does.
	OriginEgress int64
	OriginServed int64
	// Wire is what the shaped links carried (nil where the client does
	// not report what each receiver served).
	Wire *NetbedWire
}

// TLast is the last receiver's completion time (0 if one did not finish).
func (r NetbedRun) TLast() time.Duration {
	if len(r.Done) == 0 || r.Completed < r.Receivers {
		return 0
	}
	return r.Done[len(r.Done)-1]
}

// TFirst is the first receiver's completion time.
func (r NetbedRun) TFirst() time.Duration {
	if len(r.Done) == 0 {
		return 0
	}
	return r.Done[0]
}

// NetbedResult is every run of every client.
type NetbedResult struct {
	Config NetbedConfig
	TStar  time.Duration
	Runs   []NetbedRun
}

// EgressBound is the least time in which n receivers can all finish when
// the origin sends only egress bytes: everything else crosses the
// receivers' uplinks, (N·F − E)/Σu_i, and never less than T*.
func EgressBound(n int, size, egress int64, originUp, peerUp, peerDown float64) time.Duration {
	t := LowerBound(n, size, originUp, peerUp, peerDown)
	if peerUp <= 0 || n <= 0 {
		return t
	}
	rest := float64(int64(n)*size - egress)
	return max(t, time.Duration(rest/(float64(n)*peerUp)*float64(time.Second)))
}

// median of a list (0 for none): the middle value, or the mean of the two
// middle values.
func median[T time.Duration | int64 | float64](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// WriteReport prints one line per run and the medians per client.
func (r *NetbedResult) WriteReport(w io.Writer) {
	c := r.Config
	f := float64(c.Size)
	fmt.Fprintf(w, "netbed benchmark: N=%d F=%s chunk=%s u_s=%s u_i=%s d_i=%s runs=%d get-args=%q\n",
		c.Receivers, MiB(c.Size), MiB(c.ChunkSize), Mbit(c.OriginUp), Mbit(c.PeerUp), Mbit(c.PeerDown), c.Runs, strings.Join(c.GetArgs, " "))
	fmt.Fprintf(w, "T* = %s (Kumar–Ross: max(F/u_s, F/d_min, N·F/(u_s+Σu_i)))\n\n", secs(r.TStar))
	fmt.Fprintf(w, "%-7s %4s %9s %9s %10s %11s %10s %11s %10s\n", "client", "run", "T_first", "T_last", "T*/T_last", "egress×F", "E-bound", "bound/T_last", "TTFB p50")
	type agg struct {
		first, last, bound, ttfb []time.Duration
		wbound, wstar            []time.Duration
		wire                     []WireOverhead
		egress                   []int64
	}
	by := map[string]*agg{}
	order := []string{}
	for _, run := range r.Runs {
		a := by[run.Client]
		if a == nil {
			a = &agg{}
			by[run.Client] = a
			order = append(order, run.Client)
		}
		last := run.TLast()
		eb := EgressBound(c.Receivers, c.Size, run.OriginEgress, c.OriginUp, c.PeerUp, c.PeerDown)
		lastS, eff, beff := "-", "-", "-"
		if last > 0 {
			lastS = secs(last)
			eff = fmt.Sprintf("%.3f", r.TStar.Seconds()/last.Seconds())
			beff = fmt.Sprintf("%.3f", eb.Seconds()/last.Seconds())
			a.last = append(a.last, last)
		}
		ttfb := "-"
		if len(run.FirstByte) > 0 {
			m := median(run.FirstByte)
			ttfb = fmt.Sprintf("%dms", m.Milliseconds())
			a.ttfb = append(a.ttfb, m)
		}
		a.first = append(a.first, run.TFirst())
		n := len(a.first)
		a.bound = append(a.bound, eb)
		a.egress = append(a.egress, run.OriginEgress)
		fmt.Fprintf(w, "%-7s %4d %9s %9s %10s %11.2f %10s %11s %10s  (%d/%d done)\n", run.Client, n, secs(run.TFirst()), lastS, eff,
			float64(run.OriginEgress)/f, secs(eb), beff, ttfb, run.Completed, c.Receivers)
		if wl := r.wireLine(run); wl.text != "" {
			fmt.Fprintln(w, wl.text)
			if wl.measured { // a run without counters says so, and stays out of the medians
				a.wbound = append(a.wbound, wl.bound)
				a.wstar = append(a.wstar, wl.tstar)
				a.wire = append(a.wire, wl.cost)
			}
		}
	}
	fmt.Fprintln(w, "\nmedians:")
	for _, name := range order {
		a := by[name]
		last := median(a.last)
		eff, beff := "-", "-"
		if last > 0 {
			eff = fmt.Sprintf("%.3f", r.TStar.Seconds()/last.Seconds())
			beff = fmt.Sprintf("%.3f", median(a.bound).Seconds()/last.Seconds())
		}
		ttfb := "-"
		if len(a.ttfb) > 0 {
			ttfb = fmt.Sprintf("%dms", median(a.ttfb).Milliseconds())
		}
		fmt.Fprintf(w, "%-7s T_first %s  T_last %s  efficiency %s  origin egress %.2f×F  egress bound %s (bound/T_last %s)  TTFB p50 %s\n",
			name, secs(median(a.first)), secs(last), eff, float64(median(a.egress))/f, secs(median(a.bound)), beff, ttfb)
		if len(a.wbound) > 0 && last > 0 {
			wb, ws, o := median(a.wbound), median(a.wstar), medianWire(a.wire)
			fmt.Fprintf(w, "%-7s on the wire (%d of %d runs measured): h=%.4f h_o=%.4f a=%.4f  T*_wire %s (T*_wire/T_last %.3f)  egress bound %s (bound/T_last %.3f)\n",
				"", len(a.wbound), len(a.first), o.Peer, o.Origin, o.Ack, secs(ws), ws.Seconds()/last.Seconds(), secs(wb), wb.Seconds()/last.Seconds())
		}
	}
	fmt.Fprintln(w, "\nwire: h = receivers' shaped upload less a × their shaped download, per payload byte they served;"+
		" h_o = the origin's shaped upload per payload byte it served; a = bytes the origin's link received per byte it sent (ACKs, requests);"+
		" wire bound = max(T*_wire, [(1+a)·h·(N·F−E) + a·h_o·E]/Σu_i, h_o·E/u_s) with E the origin's payload")
}

// wireSummary is one run's wire overhead and the bounds it gives;
// measured is false when the run's counters gave none (text says why).
type wireSummary struct {
	text         string
	measured     bool
	cost         WireOverhead
	bound, tstar time.Duration
}

// medianWire is the median of each overhead on its own.
func medianWire(ws []WireOverhead) WireOverhead {
	var h, ho, a []float64
	for _, o := range ws {
		h, ho, a = append(h, o.Peer), append(ho, o.Origin), append(a, o.Ack)
	}
	return WireOverhead{Peer: median(h), Origin: median(ho), Ack: median(a)}
}

// wireLine is the line under a run that says what the wire cost (empty
// when the run has no wire counters).
func (r *NetbedResult) wireLine(run NetbedRun) wireSummary {
	c := r.Config
	if run.Wire == nil {
		return wireSummary{}
	}
	o, err := run.Wire.Overhead(run.OriginServed)
	if err != nil {
		return wireSummary{text: "        wire: " + err.Error()}
	}
	var up, down, served int64
	for i := range run.Wire.PeerUp {
		up += run.Wire.PeerUp[i]
		down += run.Wire.PeerDown[i]
		served += run.Wire.PeerServed[i]
	}
	ws := wireSummary{
		measured: true,
		cost:     o,
		bound:    WireEgressBound(c.Receivers, c.Size, run.OriginServed, c.OriginUp, c.PeerUp, c.PeerDown, o),
		tstar:    WireLowerBound(c.Receivers, c.Size, c.OriginUp, c.PeerUp, c.PeerDown, o),
	}
	eff := "-"
	if last := run.TLast(); last > 0 {
		eff = fmt.Sprintf("%.3f", ws.bound.Seconds()/last.Seconds())
	}
	ws.text = fmt.Sprintf("        wire: h=%.4f h_o=%.4f a=%.4f  receivers up %s for %s served, down %s; origin up %s for %s served, in %s;"+
		" T*_wire %s, wire bound %s (bound/T_last %s)",
		o.Peer, o.Origin, o.Ack, MiB(up), MiB(served), MiB(down), MiB(run.Wire.OriginUp), MiB(run.OriginServed), MiB(run.Wire.OriginIn),
		secs(ws.tstar), secs(ws.bound), eff)
	return ws
}
