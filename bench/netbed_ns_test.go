//go:build netbed

package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestNetbedSmall runs the netbed end to end on a small swarm: real shoal
// processes in namespaces it makes (root, iproute2), with a stock nginx
// and then shoal origin as the origin, and checks every receiver finished,
// the origin's egress was measured on its link and by the origin, and no
// namespace is left. Behind the netbed build tag: scripts/test.sh runs it.
func TestNetbedSmall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the netbed needs root (network namespaces, tc); CI runs as root")
	}
	bin := filepath.Join(t.TempDir(), "shoal")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/shoal").CombinedOutput(); err != nil {
		t.Fatalf("build shoal: %v\n%s", err, out)
	}
	const size = 8 << 20
	// Both origins: a stock nginx (the default) and shoal origin.
	for _, origin := range []string{OriginNginx, OriginShoal} {
		dir := t.TempDir()
		res, err := RunNetbed(context.Background(), NetbedConfig{
			Receivers: 3, Size: size, ChunkSize: 256 << 10, OriginUp: 100e6 / 8, PeerUp: 20e6 / 8, PeerDown: 100e6 / 8,
			Runs: 1, Shoal: bin, Dir: dir, Timeout: 3 * time.Minute, Progress: func(s string) { t.Log(s) },
			OriginServer: origin,
		})
		if err != nil {
			t.Fatalf("origin %s: %v", origin, err)
		}
		if len(res.Runs) != 1 {
			t.Fatalf("origin %s: %d runs, want 1", origin, len(res.Runs))
		}
		r := res.Runs[0]
		if r.Completed != 3 || r.TLast() <= 0 {
			t.Fatalf("origin %s: %d of 3 receivers finished: %+v", origin, r.Completed, r)
		}
		// The origin sent at least one copy (nobody else had it), its veth
		// counted it, and so did the origin itself.
		if r.OriginEgress < size || r.OriginServed < size {
			t.Fatalf("origin %s: egress %d B on its link, %d B served by it; want at least one copy (%d B)", origin, r.OriginEgress, r.OriginServed, size)
		}
		if r.OriginServed > r.OriginEgress {
			t.Fatalf("origin %s: served %d B by its own count but only %d B left its link", origin, r.OriginServed, r.OriginEgress)
		}
		if len(r.FirstByte) != 3 {
			t.Fatalf("origin %s: first-byte times of %d receivers, want 3", origin, len(r.FirstByte))
		}
		// The wire counters: every receiver said what it served, and the
		// overhead they give is what TCP/IP alone makes it at least (1514
		// bytes on the wire per 1448 of payload) and not absurdly more.
		if r.Wire == nil {
			t.Fatalf("origin %s: no wire counters", origin)
		}
		o, err := r.Wire.Overhead(r.OriginServed)
		if err != nil {
			t.Fatalf("origin %s: %v", origin, err)
		}
		if o.Origin < 1514.0/1448*0.99 || o.Origin > 1.5 || o.Peer < 1514.0/1448*0.99 || o.Peer > 1.5 || o.Ack <= 0 || o.Ack > 0.1 {
			t.Fatalf("origin %s: implausible wire overhead %+v", origin, o)
		}
		// Each receiver's output is kept, time-stamped, next to the run's
		// (removed) directory.
		for i := range 3 {
			b, err := os.ReadFile(filepath.Join(dir, "shoal-run0.logs", "get"+strconv.Itoa(i)+".log"))
			if err != nil {
				t.Fatalf("origin %s: receiver %d's log: %v", origin, i, err)
			}
			if !strings.Contains(string(b), " progress 100.0%") {
				t.Fatalf("origin %s: receiver %d's log has no completion line:\n%s", origin, i, b)
			}
		}
		t.Logf("origin %s: last done %v, egress %d B, served %d B, wire %+v", origin, r.TLast(), r.OriginEgress, r.OriginServed, o)
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), netnsPrefix+strconv.Itoa(os.Getpid())+"-") {
		t.Fatalf("namespaces left after the run:\n%s", out)
	}
}
