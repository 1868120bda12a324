package tracker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

// redisStore keeps the swarms in Redis, so any number of trackers share
// them (see docs/tracker-store.md). Every swarm key and index starts with
// <ns> = <prefix>v2: (the layout's version: replicas of another layout keep
// to their own keys, so neither misreads the other's values). Per swarm,
// under one hash tag so that a cluster keeps a swarm on one slot ({T} =
// content ID "!" hex of tenant):
//
//	<ns>{T}:p  sorted set: peer ID → last seen (ms, tracker clock)
//	<ns>{T}:s  sorted set: the seeds among them, same scores
//	<ns>{T}:e  hash: peer ID → storedValue: "ts uploaded downloaded " (the
//	           script's) + redisEntry (addresses, region, seed; Go's)
//	<ns>{T}:x  hash: up, dn, done: the swarm's byte totals, completions
//	<ns>{T}:t  sorted set: stopped peer ID → signing time of its stop
//
// and across swarms, for the paged listing and the swarm caps:
//
//	<ns>swarms          sorted set, all scores 0: "T" in lexical order
//	<ns>swarms:seen     sorted set: T → last announce (ms)
//	<ns>tenant:<hex>    sorted set: one tenant's T → last announce (ms)
//
// The session secret and the policy stay under <prefix> itself.
//
// One announce is one round trip: an EVALSHA (announceScript) that trims the swarm's
// expired peers, checks replay and caps, updates the peer, the seed set and
// the totals together, sets key TTLs and returns a bounded random sample;
// the choice among the sample (own region first, a few per network) is made
// here in Go. The swarm indexes and the key TTLs are written from a second
// pipeline only when this replica has not refreshed them for a third of
// the peer TTL.
type redisStore struct {
	c      redis.UniversalClient
	prefix string
	ns     string // prefix + redisLayout: the swarm keys' and indexes' start
	ttl    time.Duration
	skew   time.Duration
	lim    limits
	sample int // entries read per announce
	m      *metrics

	// indexed remembers the swarms this replica recently wrote to the
	// indexes, and when. Safe to be stale: a stale entry delays an index
	// refresh or a cap check by at most a third of the peer TTL.
	indexed *lru.Cache[string, time.Time]
	// reuse keeps, per swarm, the entries last read and when, reused for
	// announces within reuseFor (see Config.RedisSampleReuse). Safe to be
	// stale by that much: peers learn of a newcomer a moment later, and a
	// departed or expired peer is skipped by its last-seen time or fails
	// its dial.
	reuse    *lru.Cache[string, reusedSample]
	reuseFor time.Duration
	// trimmed remembers when this replica last had a swarm trimmed of its
	// expired peers (Unix ms), so the announce script trims a swarm at
	// most every trimEvery (trimDue). Safe to be stale: a forgotten swarm
	// is trimmed at its next announce.
	trimmed *lru.Cache[string, int64]

	// batch writes the announces (redisbatch.go).
	batch *redisBatcher
}

// reusedSample is a swarm's entries as one announce read them.
type reusedSample struct {
	at      time.Time
	entries []*sampled // read-only once stored: announces share it
	big     bool       // the swarm held more entries than the sample
	uses    int        // announces it served (at most maxSampleUses)
}

// sampled is one entry of a swarm's sample, decoded once when read (or
// written by this replica) and shared by every announce that reuses the
// sample.
type sampled struct {
	id     string
	e      redisEntry
	prefix netip.Prefix // of the observed address, for diversity
	// enc is the entry as most askers get it (its public addresses alone),
	// encoded at its first hand-out.
	enc atomic.Pointer[[]byte]
}

func newSampled(id string, e redisEntry) *sampled {
	return &sampled{id: id, e: e, prefix: prefixOf(e.addrs.observed)}
}

// info is the entry as the asker v (classified once per answer) gets it.
func (s *sampled) info(v viewer) discovery.PeerInfo {
	pi := discovery.PeerInfo{Peer: s.id, Addrs: s.e.addrs.visibleTo(v, nil), Region: s.e.region, Seed: s.e.seed}
	if s.e.addrs.publicOnlyTo(v) {
		enc := s.enc.Load()
		if enc == nil {
			b := pi.AppendJSON(nil)
			enc = &b
			s.enc.Store(enc)
		}
		pi.Encoded = *enc
	}
	return pi
}

const (
	// trimPerCall bounds the expired peers one script call removes, so an
	// announce to a swarm that went silent costs a bounded time; the rest
	// go on later calls (and the sample skips them meanwhile).
	trimPerCall = 500
	// sweepPerCall bounds the silent swarms one sweep looks at.
	sweepPerCall = 1000
	// indexedCacheSize bounds the swarms a replica remembers indexing.
	indexedCacheSize = 100_000
	// reuseCacheSize bounds the swarms whose last read a replica keeps,
	// each at most 2 × Config.RedisSample decoded entries of about 400
	// bytes: at most about 200 MB with the default sample, 50 MB when the
	// kept swarms hold one sample each.
	reuseCacheSize = 2048
	// redisLayout is the version of the swarm keys and values, after the
	// prefix: "v2:" since a peer's counters share its entry's value (the
	// first layout, with none, kept them in a hash of their own).
	redisLayout = "v2:"
)

func openRedisStore(ctx context.Context, cfg Config, m *metrics) (*redisStore, error) {
	opts, err := redisOptions(cfg.Redis)
	if err != nil {
		return nil, err
	}
	redis.SetLogger(redisLog{cfg.Logger})
	c := redis.NewUniversalClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("Redis at %s does not answer PING: %w", redactURL(cfg.Redis), err)
	}
	return newRedisStore(c, cfg, m), nil
}

func newRedisStore(c redis.UniversalClient, cfg Config, m *metrics) *redisStore {
	indexed, _ := lru.New[string, time.Time](indexedCacheSize)
	reuse, _ := lru.New[string, reusedSample](reuseCacheSize)
	trimmed, _ := lru.New[string, int64](indexedCacheSize)
	rs := &redisStore{
		c: c, prefix: cfg.RedisPrefix, ns: cfg.RedisPrefix + redisLayout, ttl: cfg.PeerTTL, skew: cfg.ClockSkew, lim: cfg.limits(),
		sample: cfg.RedisSample, m: m, indexed: indexed, reuse: reuse, reuseFor: cfg.RedisSampleReuse,
		trimmed: trimmed,
	}
	_, cluster := c.(*redis.ClusterClient)
	rs.batch = newRedisBatcher(rs, cluster)
	return rs
}

// redisLog passes the client's own messages (pool dial retries, which the
// tracker's errors repeat) to the tracker's log at debug level. go-redis
// has one logger per process: the last tracker opened sets it.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

// ErrBadRedisURL: Config.Redis (--redis) is not a URL go-redis can use.
var ErrBadRedisURL = errors.New("bad Redis URL")

// redisOptions turns a --redis URL into client options:
//   - redis://[user:pass@]host:port[/db] and rediss:// (TLS): one server;
//   - the same with ?master_name=NAME[&addr=host:port…]: Sentinel, the
//     host and addr values being the sentinels;
//   - redis+cluster:// or rediss+cluster://host:port[?addr=host:port…], or a
//     redis:// URL with addr= values and no master_name: Redis Cluster,
//     seeded from every address given.
func redisOptions(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadRedisURL, redactURL(raw), err)
	}
	bad := func(err error) error { return fmt.Errorf("%w %s: %v", ErrBadRedisURL, redactURL(raw), err) }
	q := u.Query()
	cluster := false
	switch u.Scheme {
	case "redis+cluster", "rediss+cluster":
		if q.Has("master_name") {
			return nil, bad(errors.New("a cluster URL takes no master_name (that is Sentinel: use redis:// or rediss://)"))
		}
		cluster = true
		u.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
	case "redis", "rediss":
		cluster = q.Has("addr") && !q.Has("master_name")
	default:
		return nil, bad(fmt.Errorf("scheme %q: want redis, rediss, redis+cluster or rediss+cluster", u.Scheme))
	}
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, bad(err)
		}
		return &redis.UniversalOptions{
			Addrs: o.SentinelAddrs, MasterName: o.MasterName, DB: o.DB, Username: o.Username, Password: o.Password,
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword, TLSConfig: o.TLSConfig,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, PoolSize: o.PoolSize,
		}, nil
	case cluster:
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, bad(err)
		}
		return &redis.UniversalOptions{
			Addrs: o.Addrs, IsClusterMode: true, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, PoolSize: o.PoolSize,
		}, nil
	}
	o, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, bad(err)
	}
	return &redis.UniversalOptions{
		Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, PoolSize: o.PoolSize,
	}, nil
}

// redactURL is raw without its password, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// member is a swarm's name in the indexes and its keys' hash tag: the
// content ID (URL-safe base64, no braces) then the tenant in hex, so that
// every tenant name fits and one content's swarms sort together.
func member(k swarmKey) string {
	return k.content.String() + "!" + hex.EncodeToString([]byte(k.tenant))
}

func parseMember(s string) (swarmKey, bool) {
	c, t, ok := strings.Cut(s, "!")
	if !ok {
		return swarmKey{}, false
	}
	id, err := core.ParseContentID(c)
	if err != nil {
		return swarmKey{}, false
	}
	tenant, err := hex.DecodeString(t)
	if err != nil {
		return swarmKey{}, false
	}
	return swarmKey{tenant: string(tenant), content: id}, true
}

// swarmKeys are the keys of one swarm, in the order the scripts take them.
func (rs *redisStore) swarmKeys(m string) []string {
	// One string holds the keys, each a slice of it: two allocations per
	// swarm of a batch instead of six.
	n := len(rs.ns) + len(m) + 4
	var b strings.Builder
	b.Grow(swarmKeyCount * n)
	for _, c := range "psext" {
		b.WriteString(rs.ns)
		b.WriteByte('{')
		b.WriteString(m)
		b.WriteString("}:")
		b.WriteByte(byte(c))
	}
	all := b.String()
	keys := make([]string, swarmKeyCount)
	for i := range keys {
		keys[i] = all[i*n : (i+1)*n]
	}
	return keys
}

func (rs *redisStore) tenantKey(tenant string) string {
	return rs.ns + "tenant:" + hex.EncodeToString([]byte(tenant))
}

func (rs *redisStore) fail(what string, err error) error {
	return fmt.Errorf("%w: redis: %s: %v", errStore, what, err)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// keyTTL is how long a swarm's keys outlive its last announce: past every
// peer's TTL and the window in which a stopped peer's replay could arrive.
func (rs *redisStore) keyTTL() time.Duration { return rs.ttl + rs.skew + time.Minute }

func (rs *redisStore) announce(ctx context.Context, req *discovery.AnnounceRequest, ad admission, want int, now time.Time) (announceResult, error) {
	var res announceResult
	mem := member(ad.key)
	last, known := rs.indexed.Get(mem)
	stale := !known || now.Sub(last) > rs.ttl/3
	if !known && req.Event != discovery.EventStopped {
		if err := rs.checkCaps(ctx, ad.key, rs.swarmKeys(mem)[0]); err != nil {
			return res, err
		}
	}
	e := redisEntry{seed: req.Left == 0, trusted: ad.trusted, lastSeen: ms(now), region: ad.region, addrs: ad.addrs}
	r := rs.batch.do(ctx, &pendingAnnounce{mem: mem, tenant: ad.key.tenant, now: ms(now), peer: req.Peer, event: eventCode(string(req.Event)),
		e: e, value: storedValue(req.TS, req.Uploaded, req.Downloaded, &e),
		sample: want > 0 && req.Event != discovery.EventStopped, index: stale && req.Event != discovery.EventStopped})
	if r.err != nil {
		return res, rs.fail("announce to swarm "+ad.key.content.Short(), r.err)
	}
	res.expired = rs.gone(ad.key, r.gone)
	switch r.status {
	case "replay":
		return res, errReplay
	case "left":
		res.left = true
		return res, nil
	case "none": // a stop from a peer not listed
		return res, nil
	case "capped":
		res.capped = "swarm full"
	case "joined":
		res.joined = true
	}
	if want > 0 && req.Event != discovery.EventStopped {
		bp := peerBufs.Get().(*[]discovery.PeerInfo)
		*bp = rs.choose(r.entries, &asker{id: req.Peer, region: ad.region, ip: ad.observed, regions: ad.regions}, want, ms(now.Add(-rs.ttl)), *bp)
		res.peers, res.pooled = *bp, bp
	}
	return res, nil
}

// trimEvery is how often, at most, one replica has the announce script
// look for a swarm's expired peers (a range query on its last-seen set):
// a peer expires a TTL after its last announce, so looking at every
// announce of a busy swarm finds nothing almost always. An expired peer
// stays in the swarm's keys up to trimEvery longer (or a fifth of the TTL
// when that is shorter); the sample skips it and the listing's counts
// exclude it meanwhile, only --max-swarm-peers may count it. A trim that
// removed as many as one call may (trimPerCall) leaves the swarm due, so a
// crowd that expired together is removed batch after batch, not 500 a
// second.
const trimEvery = time.Second

// trimDue says whether a batch should trim swarm mem at now (Unix ms):
// this replica has not had it trimmed for trimEvery (a fifth of the peer
// TTL if shorter), or does not remember it, or the clock went back.
func (rs *redisStore) trimDue(mem string, now int64) bool {
	last, ok := rs.trimmed.Get(mem)
	every := min(trimEvery, rs.ttl/5).Milliseconds()
	return !ok || now-last >= every || now < last
}

// sampleCount is the count to ask HRANDFIELD for, given the swarm's last
// sample: distinct picks (the whole hash when it is small) unless the swarm
// was large last time; then independent picks (a negative count), which
// cost Redis a fraction of distinct ones (the repeats are dropped here).
func (rs *redisStore) sampleCount(last reusedSample) int {
	if last.big {
		return -rs.sample
	}
	return rs.sample
}

// bigSample says whether a read of count (sampleCount) that gave n
// distinct entries found a swarm larger than the sample. Independent picks
// from a hash of at least sample entries give about 63 % of them distinct
// or more; fewer than half means the swarm shrank.
func (rs *redisStore) bigSample(count, n int) bool {
	if count < 0 {
		return n > rs.sample/2
	}
	return n >= rs.sample
}

// sessionSecret returns the session secret the replicas on this Redis
// share: the one stored under PREFIX+"session-key", or fresh (stored for the
// others) when there is none yet. It does not expire: tickets outlive any
// one replica.
func (rs *redisStore) sessionSecret(ctx context.Context, fresh []byte) ([]byte, error) {
	key := rs.prefix + "session-key"
	if err := rs.c.SetNX(ctx, key, fresh, 0).Err(); err != nil {
		return nil, rs.fail("store the session secret", err)
	}
	k, err := rs.c.Get(ctx, key).Bytes()
	if err != nil {
		return nil, rs.fail("read the session secret", err)
	}
	if len(k) < MinSessionKeyLen {
		return nil, fmt.Errorf("%w: redis key %s holds a %d-byte session secret, want at least %d (delete it, or give --session-key-file)", errStore, key, len(k), MinSessionKeyLen)
	}
	return k, nil
}

// stoppedPerSwarm bounds the stopped peers remembered per swarm (besides
// dropping those whose stop is older than the clock skew: their earlier
// announces are refused as stale anyway).
const stoppedPerSwarm = 10_000

// checkCaps refuses a new swarm over MaxSwarms or MaxTenantSwarms. It counts
// the indexes, so the caps are approximate across replicas: swarms opened at
// the same moment on several replicas can pass them by as many.
func (rs *redisStore) checkCaps(ctx context.Context, k swarmKey, peersKey string) error {
	if rs.lim.swarms < 0 && rs.lim.tenantSwarms < 0 {
		return nil
	}
	var exists, total, tenant *redis.IntCmd
	_, err := rs.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, peersKey)
		total = p.ZCard(ctx, rs.ns+"swarms")
		tenant = p.ZCard(ctx, rs.tenantKey(k.tenant))
		return nil
	})
	if err != nil {
		return rs.fail("count swarms", err)
	}
	if exists.Val() > 0 {
		return nil
	}
	if n := int(total.Val()); over(n, rs.lim.swarms) {
		return fmt.Errorf("%w: %d swarms, the most allowed (--max-swarms)", errTooMany, n)
	}
	if n := int(tenant.Val()); over(n, rs.lim.tenantSwarms) {
		return fmt.Errorf("%w: tenant %q has %d swarms, the most allowed (--max-tenant-swarms)", errTooMany, k.tenant, n)
	}
	return nil
}

// index queues on p the writes that put swarm mem (of tenant) into the
// listing and cap indexes and refresh its keys' TTLs, at now (Unix ms).
// The batch that wrote the swarm sends them after its script; a failure
// only delays the swarm's listing: the next announce tries again.
func (rs *redisStore) index(ctx context.Context, p redis.Pipeliner, keys []string, mem, tenant string, now int64) *redis.IntCmd {
	for _, k := range keys {
		p.PExpire(ctx, k, rs.keyTTL())
	}
	p.ZAdd(ctx, rs.ns+"swarms", redis.Z{Member: mem})
	p.ZAdd(ctx, rs.ns+"swarms:seen", redis.Z{Score: float64(now), Member: mem})
	return p.ZAdd(ctx, rs.tenantKey(tenant), redis.Z{Score: float64(now), Member: mem})
}

// gone decodes the script's list of expired peers: ID, entry, ID, entry….
func (rs *redisStore) gone(k swarmKey, v any) []leftPeer {
	l, _ := v.([]any)
	var out []leftPeer
	for i := 0; i+1 < len(l); i += 2 {
		id, _ := l[i].(string)
		lp := leftPeer{key: k, id: id}
		if s, ok := l[i+1].(string); ok {
			if e, err := decodeStored([]byte(s)); err == nil {
				lp.ip = e.addrs.observed
			}
		}
		out = append(out, lp)
	}
	return out
}

// choose picks up to k peers for a among the sampled entries with the
// rules of state.sample: never a itself, only addresses a can dial,
// residency, a's region first, at most perPrefix from one /24 or /48.
// Entries past the TTL not yet trimmed are skipped. The peers are appended
// to out (a pooled slice, see peerBufs).
//
// The entries are visited in a random order drawn as it goes (a
// Fisher-Yates shuffle that stops once k peers are taken), so an announce
// that finds its peers among the first entries it draws looks at no more.
// The second pass (other regions) runs only when the first drew every
// entry, so it walks a whole shuffle.
func (rs *redisStore) choose(entries []*sampled, a *asker, k int, cutoff int64, out []discovery.PeerInfo) []discovery.PeerInfo {
	if k <= 0 || len(entries) == 0 {
		return out
	}
	sp := chooseBufs.Get().(*[]*sampled)
	cands := append((*sp)[:0], entries...)
	defer func() {
		clear(cands)
		if cap(cands) <= maxPooledChoose {
			*sp = cands[:0]
			chooseBufs.Put(sp)
		}
	}()
	// taken counts the peers handed out per network: at most k networks,
	// searched in place (cheaper than a map for the few dozen peers of an
	// answer).
	type count struct {
		p netip.Prefix
		n int
	}
	var buf [64]count
	taken := buf[:0]
	v := viewerOf(a.ip) // the asker, classified once for every entry looked at
	take := func(s *sampled) bool {
		if rs.lim.perPrefix >= 0 && !s.prefix.Addr().IsLoopback() {
			i := 0
			for i < len(taken) && taken[i].p != s.prefix {
				i++
			}
			if i == len(taken) {
				taken = append(taken, count{p: s.prefix})
			}
			if taken[i].n >= rs.lim.perPrefix {
				return false
			}
			taken[i].n++
		}
		out = append(out, s.info(v))
		return true
	}
	n, got := len(cands), 0
	for i := 0; i < n; i++ {
		if got == k {
			return out
		}
		j := i + rand.IntN(n-i)
		cands[i], cands[j] = cands[j], cands[i]
		s := cands[i]
		if s.id == a.id || s.e.lastSeen < cutoff || !s.e.addrs.anyVisibleTo(v) ||
			len(a.regions) > 0 && !(s.e.trusted && slices.Contains(a.regions, s.e.region)) {
			cands[i] = nil // never eligible
			continue
		}
		if s.e.region != a.region {
			continue // the second pass's
		}
		if take(s) {
			got++
		}
		cands[i] = nil
	}
	for _, s := range cands {
		if got == k {
			break
		}
		if s != nil && take(s) {
			got++
		}
	}
	return out
}

// chooseBufs holds choose's scratch slices between announces.
var chooseBufs = sync.Pool{New: func() any { return new([]*sampled) }}

// maxPooledChoose bounds the scratch slices kept in chooseBufs (twice the
// default sample: the kept sample may grow by this replica's joins).
const maxPooledChoose = 4 * DefaultRedisSample

// expire trims the swarms nobody announced to for a TTL: their peers are
// all silent. Swarms with announces trim themselves in announceScript.
func (rs *redisStore) expire(ctx context.Context, now time.Time) ([]leftPeer, error) {
	cutoff := ms(now.Add(-rs.ttl))
	stale, err := rs.c.ZRangeByScore(ctx, rs.ns+"swarms:seen", &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(cutoff, 10), Count: sweepPerCall,
	}).Result()
	if err != nil {
		return nil, rs.fail("list silent swarms", err)
	}
	var gone []leftPeer
	for _, mem := range stale {
		k, ok := parseMember(mem)
		r, err := trimScript.Run(ctx, rs.c, rs.swarmKeys(mem), cutoff, ms(now.Add(-rs.skew)), stoppedPerSwarm, trimPerCall).Slice()
		if err != nil {
			return gone, rs.fail("trim swarm "+mem, err)
		}
		if ok {
			gone = append(gone, rs.gone(k, r[0])...)
		}
		if left, _ := r[1].(int64); ok && left > 0 {
			// Peers still live (or more to trim): announced through a
			// replica whose index refresh is pending. Look again later.
			rs.c.ZAdd(ctx, rs.ns+"swarms:seen", redis.Z{Score: float64(ms(now)), Member: mem})
			continue
		}
		// Empty (its keys deleted by the script), or a name no tracker
		// writes: unlist it.
		_, err = rs.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.ZRem(ctx, rs.ns+"swarms", mem)
			p.ZRem(ctx, rs.ns+"swarms:seen", mem)
			if ok {
				p.ZRem(ctx, rs.tenantKey(k.tenant), mem)
			}
			return nil
		})
		if err != nil {
			return gone, rs.fail("unlist swarm "+mem, err)
		}
		rs.indexed.Remove(mem)
	}
	if n, err := rs.c.ZCard(ctx, rs.ns+"swarms").Result(); err == nil {
		rs.m.swarms.Set(float64(n))
	}
	return gone, nil
}

// page lists swarms in the lexical order of their index names (content,
// then tenant). Each costs three counts, so a page is O(limit · log n).
func (rs *redisStore) page(ctx context.Context, after *swarmKey, limit int, now time.Time) ([]SwarmStats, *swarmKey, error) {
	start := "-"
	if after != nil {
		start = "(" + member(*after)
	}
	mems, err := rs.c.ZRangeByLex(ctx, rs.ns+"swarms", &redis.ZRangeBy{Min: start, Max: "+", Count: int64(limit) + 1}).Result()
	if err != nil {
		return nil, nil, rs.fail("list swarms", err)
	}
	var next *swarmKey
	if len(mems) > limit {
		mems = mems[:limit]
		if k, ok := parseMember(mems[len(mems)-1]); ok {
			next = &k
		}
	}
	type counts struct {
		k            swarmKey
		peers, seeds *redis.IntCmd
		x            *redis.SliceCmd
	}
	cs := make([]counts, 0, len(mems))
	min := strconv.FormatInt(ms(now.Add(-rs.ttl)), 10)
	_, err = rs.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, mem := range mems {
			k, ok := parseMember(mem)
			if !ok {
				continue
			}
			ks := rs.swarmKeys(mem)
			cs = append(cs, counts{k: k, peers: p.ZCount(ctx, ks[0], min, "+inf"), seeds: p.ZCount(ctx, ks[1], min, "+inf"),
				x: p.HMGet(ctx, ks[3], "up", "dn", "done")})
		}
		return nil
	})
	if err != nil {
		return nil, nil, rs.fail("count swarms", err)
	}
	out := make([]SwarmStats, 0, len(cs))
	for _, c := range cs {
		n := int(c.peers.Val())
		if n == 0 {
			continue // silent: the sweep unlists it
		}
		x := c.x.Val()
		st := SwarmStats{Tenant: c.k.tenant, Content: c.k.content, Peers: n, Seeds: int(c.seeds.Val())}
		st.Leechers = st.Peers - st.Seeds
		st.Uploaded, st.Downloaded, st.Completed = toInt(x[0]), toInt(x[1]), toInt(x[2])
		out = append(out, st)
	}
	return out, next, nil
}

func toInt(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// listed looks up the peer in each tenant's swarm of the content (at most
// 64 tenants: a report names no tenant).
func (rs *redisStore) listed(ctx context.Context, content core.ContentID, peer string, now time.Time) (bool, error) {
	c := content.String()
	mems, err := rs.c.ZRangeByLex(ctx, rs.ns+"swarms", &redis.ZRangeBy{Min: "[" + c + "!", Max: "[" + c + "\"", Count: 64}).Result()
	if err != nil {
		return false, rs.fail("find swarms of "+content.Short(), err)
	}
	for _, mem := range mems {
		score, err := rs.c.ZScore(ctx, rs.swarmKeys(mem)[0], peer).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return false, rs.fail("find peer in "+mem, err)
		}
		if int64(score) >= ms(now.Add(-rs.ttl)) {
			return true, nil
		}
	}
	return false, nil
}

func (rs *redisStore) close() error {
	rs.batch.close()
	return rs.c.Close()
}
