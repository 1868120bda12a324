package tracker

import (
	"net/netip"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// limiterTable is a bounded set of token buckets, one per key (an IP or a
// prefix). When full, the least recently used bucket is forgotten: a key
// that comes back starts with a full burst, which bounds memory at the cost
// of letting an attacker with more addresses than the table holds some
// extra announces.
type limiterTable[K comparable] struct {
	limit rate.Limit
	burst int

	mu sync.Mutex // guards c's recency order together with each bucket's refusing flag
	c  *lru.Cache[K, *bucket]
}

type bucket struct {
	lim      *rate.Limiter
	refusing bool // the last request was refused: audit only the first of a run
}

func newLimiterTable[K comparable](perSecond float64, burst, size int) *limiterTable[K] {
	if unlimited(perSecond) {
		return nil
	}
	c, _ := lru.New[K, *bucket](size) // size > 0: withDefaults made it so
	return &limiterTable[K]{limit: rate.Limit(perSecond), burst: max(burst, 1), c: c}
}

// allow takes a token for key at now. first is true on the first refusal
// after an allowed request, so an attacker hammering the tracker costs one
// audit event per episode, not one per request. A nil table allows all.
func (t *limiterTable[K]) allow(key K, now time.Time) (ok, first bool) {
	if t == nil {
		return true, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b, found := t.c.Get(key)
	if !found {
		b = &bucket{lim: rate.NewLimiter(t.limit, t.burst)}
		t.c.Add(key, b)
	}
	if b.lim.AllowN(now, 1) {
		b.refusing = false
		return true, false
	}
	first = !b.refusing
	b.refusing = true
	return false, first
}

// rateLimits are the per-IP and per-prefix announce limits.
type rateLimits struct {
	ip     *limiterTable[netip.Addr]
	prefix *limiterTable[netip.Prefix]
}

func newRateLimits(c Config) rateLimits {
	return rateLimits{
		ip:     newLimiterTable[netip.Addr](c.RatePerIP, c.BurstPerIP, c.RateTableSize),
		prefix: newLimiterTable[netip.Prefix](c.RatePerPrefix, c.BurstPerPrefix, c.RateTableSize),
	}
}

// allow checks both limits for ip and returns which one refused ("" when
// none did) and whether it is the first refusal of a run.
func (l rateLimits) allow(ip netip.Addr, now time.Time) (refusedBy string, first bool) {
	if ok, f := l.ip.allow(ip, now); !ok {
		return "this address", f
	}
	if ok, f := l.prefix.allow(prefixOf(ip), now); !ok {
		return "this network (/24 or /48)", f
	}
	return "", false
}
