package tracker

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/internal/redistest"
)

// BenchmarkAnnounceRedisSwarms is the Redis store under concurrent load
// shaped like `shoal bench tracker`'s: 10,000 peers over 1,000 swarms of
// Zipf(1.1) popularity, each slot taking a new identity every 12 rounds,
// 32 announces in flight, the handler called directly (no network, checks
// off). It reports announces/s and the Redis server's own CPU per
// announce (from INFO cpu), this process's (the tracker's handler and
// Redis client, from getrusage), and the commands Redis ran per announce
// (from INFO commandstats, the script's own calls included).
func BenchmarkAnnounceRedisSwarms(b *testing.B) {
	rds := redistest.Start(b)
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := Open(context.Background(), Config{Interval: 10 * time.Second, MaxPeers: 50, Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)),
		Logger: quiet, AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1, Redis: rds.URL(), MaxSwarms: -1, MaxPeersTotal: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const peers, swarms = 10000, 1000
	rng := rand.New(rand.NewPCG(7, 7))
	z := rand.NewZipf(rng, 1.1, 1, swarms-1)
	swarmOfSlot := make([]int, peers)
	for i := range swarmOfSlot {
		swarmOfSlot[i] = int(z.Uint64())
	}
	body := func(j int) []byte {
		r, q := j/peers, j%peers
		gen := (r + q%12) / 12 // a new identity every 12 rounds, staggered
		a := req(fmt.Sprint("swarm", swarmOfSlot[q]), fmt.Sprintf("p%d-%d", q, gen), "", int64(q%3))
		if (r+q%12)%12 == 0 {
			a.Event = discovery.EventStarted
		}
		a.Uploaded, a.Downloaded = int64(r*100), int64(r*1000)
		out, _ := json.Marshal(a)
		return out
	}
	for j := range peers { // round 0: everyone joins
		if code, resp := post(b, s, body(j)); code != http.StatusOK {
			b.Fatalf("HTTP %d: %s", code, resp)
		}
	}
	bodies := make([][]byte, b.N)
	for j := range bodies {
		bodies[j] = body(peers + j)
	}
	cpu := func() float64 {
		info, _ := s.store.(*redisStore).c.Info(context.Background(), "cpu").Result()
		var t float64
		for _, l := range strings.Split(info, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(l), ":")
			if k == "used_cpu_sys" || k == "used_cpu_user" {
				f, _ := strconv.ParseFloat(v, 64)
				t += f
			}
		}
		return t
	}
	// calls counts the commands Redis ran (the script's own calls
	// included): a figure the machine's load does not change.
	calls := func() int64 {
		info, _ := s.store.(*redisStore).c.Info(context.Background(), "commandstats").Result()
		var n int64
		for _, l := range strings.Split(info, "\n") {
			_, v, ok := strings.Cut(strings.TrimSpace(l), ":calls=")
			if !ok {
				continue
			}
			v, _, _ = strings.Cut(v, ",")
			c, _ := strconv.ParseInt(v, 10, 64)
			n += c
		}
		return n
	}
	self := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0, s0, n0 := cpu(), self(), calls()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			j := int(next.Add(1) - 1)
			if code, resp := post(b, s, bodies[j]); code != http.StatusOK {
				b.Errorf("HTTP %d: %s", code, resp)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "announces/s")
	b.ReportMetric((cpu()-c0)*1e6/float64(b.N), "redis-µs/announce")
	b.ReportMetric(float64((self()-s0).Microseconds())/float64(b.N), "tracker-µs/announce")
	b.ReportMetric(float64(calls()-n0)/float64(b.N), "redis-calls/announce")
}
