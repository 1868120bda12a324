package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Mbit formats a rate in bytes/s as Mbit/s ("unlimited" for 0).
func Mbit(bytesPerSec float64) string {
	if bytesPerSec <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%gMbit/s", math.Round(bytesPerSec*8/1e5)/10)
}

// MiB formats a byte count in MiB.
func MiB(n int64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// String is a one-line description of the progress for a terminal or log.
func (p Progress) String() string {
	pct := 0.0
	if p.Total > 0 {
		pct = 100 * float64(p.Held) / float64(p.Total)
	}
	return fmt.Sprintf("%7s  joined %d/%d  done %d/%d  held %5.1f%%  receiving %6.1fMbit/s  origin sent %s",
		secs(p.Elapsed), p.Joined, p.Peers, p.Done, p.Peers, pct, p.Rate*8/1e6, MiB(p.OriginBytes))
}

// WriteReport prints the per-peer table (by completion time) and the
// totals, then the Summary line.
func (r *SwarmResult) WriteReport(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "swarm benchmark: N=%d F=%s chunk=%s u_s=%s u_i=%s d_i=%s seed=%d join-spread=%v origin-assist=%v\n",
		c.Peers, MiB(c.Size), MiB(c.ChunkSize), Mbit(c.OriginUp), Mbit(c.PeerUp), Mbit(c.PeerDown), c.Seed, c.JoinSpread, c.OriginAssist)
	fmt.Fprintf(w, "\n%-8s %8s %9s %10s %10s %10s\n", "peer", "joined", "finished", "from peers", "from orig", "uploaded")
	for _, p := range r.Peers {
		fin := "-"
		if p.Complete {
			fin = secs(p.Finished)
		}
		fmt.Fprintf(w, "%-8s %8s %9s %10s %10s %10s\n", p.Name, secs(p.Joined), fin, MiB(p.FromPeers), MiB(p.FromOrigin), MiB(p.Uploaded))
	}
	fmt.Fprintf(w, "\ncompleted     %d/%d\n", r.Completed, len(r.Peers))
	fmt.Fprintf(w, "T_last        %s\n", secs(r.TLast))
	fmt.Fprintf(w, "T*            %s  = max(F/u_s, F/d_min, N·F/(u_s+Σu_i))\n", secs(r.TStar))
	fmt.Fprintf(w, "efficiency    %.3f  (T*/T_last)\n", r.Efficiency)
	fmt.Fprintf(w, "origin egress %s = %.2f×F\n", MiB(r.OriginBytes), r.OriginRatio)
	total := r.FromPeers + r.FromOrigin
	share := 0.0
	if total > 0 {
		share = float64(r.FromPeers) / float64(total)
	}
	fmt.Fprintf(w, "received      %s from peers (%.1f%%), %s from the origin\n", MiB(r.FromPeers), 100*share, MiB(r.FromOrigin))
	fmt.Fprintf(w, "wall time     %s (generate, publish, swarm, teardown)\n", secs(r.Wall))
	fmt.Fprintln(w, r.Summary())
}

// Summary is the machine-readable result: "result" and key=value pairs,
// times in seconds and sizes in bytes.
func (r *SwarmResult) Summary() string {
	c := r.Config
	kv := []string{
		"result",
		fmt.Sprintf("peers=%d", c.Peers),
		fmt.Sprintf("size=%d", c.Size),
		fmt.Sprintf("chunk=%d", c.ChunkSize),
		fmt.Sprintf("origin_up=%.0f", c.OriginUp),
		fmt.Sprintf("peer_up=%.0f", c.PeerUp),
		fmt.Sprintf("peer_down=%.0f", c.PeerDown),
		fmt.Sprintf("origin_assist=%v", c.OriginAssist),
		fmt.Sprintf("completed=%d", r.Completed),
		fmt.Sprintf("t_last=%.3f", r.TLast.Seconds()),
		fmt.Sprintf("tstar=%.3f", r.TStar.Seconds()),
		fmt.Sprintf("efficiency=%.3f", r.Efficiency),
		fmt.Sprintf("origin_bytes=%d", r.OriginBytes),
		fmt.Sprintf("origin_egress_ratio=%.3f", r.OriginRatio),
		fmt.Sprintf("from_peers=%d", r.FromPeers),
		fmt.Sprintf("from_origin=%d", r.FromOrigin),
		fmt.Sprintf("wall=%.3f", r.Wall.Seconds()),
	}
	return strings.Join(kv, " ")
}
