package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLowerBound(t *testing.T) {
	const mbit = 1e6 / 8
	tests := []struct {
		name                       string
		n                          int
		size                       int64
		originUp, peerUp, peerDown float64
		want                       time.Duration
	}{
		// N·F/(u_s+Σu_i) = 20·256MiB·8 / 500Mbit = 85.899s.
		{"defaults: swarm upload bound", 20, 256 << 20, 100 * mbit, 20 * mbit, 100 * mbit, 85899345920 * time.Nanosecond},
		{"one peer: origin bound", 1, 100e6, 10e6, 1e9, 0, 10 * time.Second},
		{"slow downloader", 4, 100e6, 1e9, 1e9, 1e6, 100 * time.Second},
		// u_i = 0 means unlimited, so "peers barely upload" is a tiny u_i.
		{"peers barely upload: N copies from the origin", 5, 1e6, 1e6, 1e-9, 0, 5 * time.Second},
		{"unlimited peer upload: one origin copy", 5, 1e6, 1e6, 0, 0, time.Second},
		{"aggregate upload", 9, 1e6, 1e6, 1e6 / 9, 0, 4500 * time.Millisecond},
		{"all unlimited", 5, 1e6, 0, 0, 0, 0},
		{"no peers", 0, 1e6, 1e6, 1e6, 1e6, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := LowerBound(tc.n, tc.size, tc.originUp, tc.peerUp, tc.peerDown)
			if d := got - tc.want; d < -time.Microsecond || d > time.Microsecond {
				t.Fatalf("LowerBound = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRunSwarmCompletes(t *testing.T) {
	const n, size = 4, 4 << 20
	tests := []struct {
		name   string
		mutate func(*SwarmConfig)
	}{
		{"flash crowd", func(*SwarmConfig) {}},
		{"join spread", func(c *SwarmConfig) { c.JoinSpread = 100 * time.Millisecond }},
		{"origin assist", func(c *SwarmConfig) { c.OriginAssist = true }},
	}
	for k, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := SwarmConfig{
				Peers: n, Size: size, ChunkSize: 64 << 10, Seed: uint64(k + 1),
				OriginUp: 200e6, PeerUp: 100e6, PeerDown: 400e6, Dir: t.TempDir(),
			}
			tc.mutate(&cfg)
			res, err := RunSwarm(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Completed != n || len(res.Peers) != n {
				t.Fatalf("%d of %d peers completed (%d results)", res.Completed, n, len(res.Peers))
			}
			var last time.Duration
			for i, p := range res.Peers {
				if !p.Complete || p.Finished < p.Joined {
					t.Fatalf("peer %s: complete %v, joined %v, finished %v", p.Name, p.Complete, p.Joined, p.Finished)
				}
				if i > 0 && p.Finished < res.Peers[i-1].Finished {
					t.Fatalf("peers not sorted by completion: %v after %v", p.Finished, res.Peers[i-1].Finished)
				}
				last = p.Finished
			}
			if res.TLast != last {
				t.Fatalf("T_last %v, last completion %v", res.TLast, last)
			}
			// Every peer counts first copies only, and the content has no
			// repeated chunks: together they received exactly N·F.
			if got := res.FromPeers + res.FromOrigin; got != n*size {
				t.Fatalf("received %d bytes from peers and origin, want N·F = %d", got, n*size)
			}
			if res.OriginBytes < res.FromOrigin || res.OriginBytes < size {
				t.Fatalf("origin egress %d: less than received from it (%d) or than one copy", res.OriginBytes, res.FromOrigin)
			}
			if want := float64(res.OriginBytes) / size; res.OriginRatio != want {
				t.Fatalf("origin ratio %v, want %v", res.OriginRatio, want)
			}
			if want := LowerBound(n, size, cfg.OriginUp, cfg.PeerUp, cfg.PeerDown); res.TStar != want {
				t.Fatalf("T* %v, want %v", res.TStar, want)
			}
			if want := float64(res.TStar) / float64(res.TLast); res.Efficiency != want {
				t.Fatalf("efficiency %v, want %v", res.Efficiency, want)
			}
			sum := res.Summary()
			for _, kv := range []string{"result ", fmt.Sprintf("peers=%d", n), fmt.Sprintf("size=%d", size), "completed=4",
				fmt.Sprintf("origin_egress_ratio=%.3f", res.OriginRatio), fmt.Sprintf("efficiency=%.3f", res.Efficiency)} {
				if !strings.Contains(sum, kv) {
					t.Fatalf("summary %q lacks %q", sum, kv)
				}
			}
			var b strings.Builder
			res.WriteReport(&b)
			if !strings.HasSuffix(b.String(), sum+"\n") || strings.Count(b.String(), "peer-0") != n {
				t.Fatalf("report:\n%s", b.String())
			}
		})
	}
}

// TestRunSwarmStopsOnCancel guards clean shutdown: a slow swarm cancelled
// from the progress callback returns promptly with the partial result.
func TestRunSwarmStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := SwarmConfig{
		Peers: 3, Size: 4 << 20, ChunkSize: 64 << 10, Seed: 7, Dir: t.TempDir(),
		OriginUp: 256 << 10, PeerUp: 128 << 10, PeerDown: 1 << 20,
		JoinSpread:    time.Hour, // the last peer never joins
		ProgressEvery: 20 * time.Millisecond,
		Progress:      func(Progress) { cancel() },
	}
	res, err := RunSwarm(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if res == nil || res.Completed != 0 || len(res.Peers) != 3 {
		t.Fatalf("partial result %+v", res)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []SwarmConfig{
		{Peers: 0, Size: 1},
		{Peers: 1, Size: 0},
		{Peers: 1, Size: 1, PeerUp: -1},
	} {
		if _, err := RunSwarm(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err = %v, want ErrConfig", cfg, err)
		}
	}
}
