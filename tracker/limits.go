package tracker

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/shoal-cdn/shoal/core"
)

// limiterTable is a bounded set of token buckets, one per key (an IP or a
// prefix). When full, the least recently used bucket is forgotten: a key
// that comes back starts with a full burst, which bounds memory at the cost
// of letting an attacker with more addresses than the table holds some
// extra announces. A large table is split into parts (core.ShardSizes) by
// a seeded hash of the key, each with its own lock and its own
// least-recently-used order (and its share of the size).
type limiterTable[K comparable] struct {
	perSec float64 // tokens added per second
	burst  float64 // a bucket's capacity, and what a new one holds
	seed   maphash.Seed
	shards []limiterShard[K]
}

type limiterShard[K comparable] struct {
	mu sync.Mutex // guards c and every bucket in it
	c  *simplelru.LRU[K, *bucket]
	_  [40]byte // keeps two shards' locks off one cache line
}

// bucket is one key's token bucket.
type bucket struct {
	tokens   float64 // at last
	last     time.Time
	refusing bool // the last request was refused: audit only the first of a run
}

// take takes one token at now if there is one, after adding what perSec
// brought since the bucket's last change (none for a now before it), capped
// at burst. A refusal changes nothing.
func (b *bucket) take(now time.Time, perSec, burst float64) bool {
	tokens := b.tokens
	if now.After(b.last) {
		tokens = min(burst, tokens+now.Sub(b.last).Seconds()*perSec)
	} else {
		now = b.last
	}
	if tokens < 1 {
		return false
	}
	b.tokens, b.last = tokens-1, now
	return true
}

func newLimiterTable[K comparable](perSecond float64, burst, size int) *limiterTable[K] {
	if unlimited(perSecond) {
		return nil
	}
	sizes := core.ShardSizes(size) // size > 0: withDefaults made it so
	t := &limiterTable[K]{perSec: perSecond, burst: float64(max(burst, 1)), seed: maphash.MakeSeed(), shards: make([]limiterShard[K], len(sizes))}
	for i, n := range sizes {
		t.shards[i].c, _ = simplelru.NewLRU[K, *bucket](n, nil)
	}
	return t
}

// allow takes a token for key at now. first is true on the first refusal
// after an allowed request, so an attacker hammering the tracker costs one
// audit event per episode, not one per request. A nil table allows all.
func (t *limiterTable[K]) allow(key K, now time.Time) (ok, first bool) {
	if t == nil {
		return true, false
	}
	s := &t.shards[0]
	if len(t.shards) > 1 {
		s = &t.shards[maphash.Comparable(t.seed, key)%uint64(len(t.shards))]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, found := s.c.Get(key)
	if !found {
		b = &bucket{tokens: t.burst, last: now}
		s.c.Add(key, b)
	}
	if b.take(now, t.perSec, t.burst) {
		b.refusing = false
		return true, false
	}
	first = !b.refusing
	b.refusing = true
	return false, first
}

// len is how many buckets t holds.
func (t *limiterTable[K]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.c.Len()
		s.mu.Unlock()
	}
	return n
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
