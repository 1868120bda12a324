package sim

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// liveBench is scenarios/scale-live-10k.yaml scaled down to 1,000 viewers
// and 10 minutes, the workload whose per-viewer control cost dominates the
// hour-long 10k run.
const liveBench = `
name: live-bench
seed: 8
kind: live
duration: %s
media: {bitrate: 4Mbit, segment: 6s, delay: 3}
origin: {capacity: 20Gbit}
swarm: {tick: 2s}
classes:
  - {name: fiber, share: 0.3, up: 100Mbit, down: 500Mbit, latency: 5ms}
  - {name: cable, share: 0.5, up: 20Mbit, down: 200Mbit, latency: 15ms, nat: true}
  - {name: mobile, share: 0.2, up: 0, down: 30Mbit, latency: 40ms, no_upload: true, nat: true}
joins: {count: %d, over: %s}
`

// BenchmarkLive simulates a live event; bytes are the bytes delivered to
// viewers, so MB/s is simulated delivery per wall-clock second.
// Profile with: go test -run '^$' -bench Live -cpuprofile cpu.out ./sim/
func BenchmarkLive(b *testing.B) {
	// SIM_BENCH_LIVE="DURATION VIEWERS JOINS_OVER" profiles other sizes,
	// e.g. "1h 10000 5m" is scenarios/scale-live-10k.yaml.
	dur, viewers, over := "10m", 1000, "1m"
	if v := os.Getenv("SIM_BENCH_LIVE"); v != "" {
		if _, err := fmt.Sscan(v, &dur, &viewers, &over); err != nil {
			b.Fatalf("SIM_BENCH_LIVE=%q: %v", v, err)
		}
	}
	sc, err := Parse([]byte(fmt.Sprintf(liveBench, dur, viewers, over)))
	if err != nil {
		b.Fatal(err)
	}
	var events int64
	for b.Loop() {
		r, err := Run(context.Background(), sc)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(r.OriginBytes + r.PeerBytes)
		events = r.Events
	}
	b.ReportMetric(float64(events), "events/op")
}

// fileBench is scenarios/scale-file-10k.yaml scaled down: 1,000 peers,
// 256 MiB in 4 MiB chunks.
const fileBench = `
name: file-bench
seed: 7
kind: file
duration: 3h
content: {size: 256MiB, chunk: 4MiB}
origin: {capacity: 10Gbit}
classes:
  - {name: fiber, share: 0.3, up: 100Mbit, down: 500Mbit, latency: 5ms}
  - {name: cable, share: 0.5, up: 20Mbit, down: 200Mbit, latency: 15ms, nat: true}
  - {name: mobile, share: 0.2, up: 0, down: 30Mbit, latency: 40ms, no_upload: true, nat: true}
joins: {count: 1000, over: 1m}
`

// BenchmarkFile simulates a file distribution; MB/s is simulated delivery
// per wall-clock second.
func BenchmarkFile(b *testing.B) {
	sc, err := Parse([]byte(fileBench))
	if err != nil {
		b.Fatal(err)
	}
	var events int64
	for b.Loop() {
		r, err := Run(context.Background(), sc)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(r.OriginBytes + r.PeerBytes)
		events = r.Events
	}
	b.ReportMetric(float64(events), "events/op")
}
