package tracker

import (
	"net/netip"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// TestLimiterRefills: a bucket holds its burst, refills at its rate up to
// the burst and no further, and a clock that steps back takes nothing and
// gives nothing.
func TestLimiterRefills(t *testing.T) {
	tab := newLimiterTable[int](2, 3, 8) // 2/s, burst 3
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	take := func(at time.Time, want int) {
		t.Helper()
		n := 0
		for {
			if ok, _ := tab.allow(1, at); !ok {
				break
			}
			if n++; n > 100 {
				t.Fatal("never refused")
			}
		}
		if n != want {
			t.Fatalf("at +%v: %d allowed, want %d", at.Sub(now), n, want)
		}
	}
	take(now, 3)                                      // the burst
	take(now.Add(500*time.Millisecond), 1)            // 0.5 s at 2/s
	take(now.Add(750*time.Millisecond), 0)            // half a token
	take(now.Add(1000*time.Millisecond), 1)           // 0.5 s after the last success
	take(now.Add(time.Hour), 3)                       // full again, capped at the burst
	take(now.Add(time.Hour-10*time.Second), 0)        // earlier than the last: nothing back
	take(now.Add(time.Hour+1500*time.Millisecond), 3) // 1.5 s from the last success
}

// TestLimiterTableShardedIsBounded: a table big enough to be split into
// shards keeps at most its size of buckets, and still limits each key.
func TestLimiterTableShardedIsBounded(t *testing.T) {
	tab := newLimiterTable[int](1, 1, core.ShardedMin)
	if len(tab.shards) != core.Shards {
		t.Fatalf("table of %d in %d shards, want %d", core.ShardedMin, len(tab.shards), core.Shards)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for key := range 4 * core.ShardedMin {
		if ok, _ := tab.allow(key, now); !ok {
			t.Fatalf("key %d refused its first request", key)
		}
	}
	if n := tab.len(); n > core.ShardedMin || n < core.ShardedMin/2 {
		t.Fatalf("table holds %d buckets, want at most its size %d (and most of it used)", n, core.ShardedMin)
	}
	last := 4*core.ShardedMin - 1
	if ok, first := tab.allow(last, now); ok || !first {
		t.Fatalf("key %d again at once: ok %v first %v, want refused, first of a run", last, ok, first)
	}
}

// BenchmarkRateLimits is the per-announce rate check of 10,000 addresses
// in 40 /24s, with the default rates and table size.
func BenchmarkRateLimits(b *testing.B) {
	l := newRateLimits(Config{}.withDefaults())
	ips := make([]netip.Addr, 10000)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(1 + i%250)})
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now = now.Add(time.Second) // refilled: every check allowed
		if by, _ := l.allow(ips[i%len(ips)], now); by != "" {
			b.Fatalf("refused by %s", by)
		}
		i++
	}
}
