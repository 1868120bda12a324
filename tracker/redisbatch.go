package tracker

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisBatcher writes the announces that arrive together in one round
// trip: each lane sends, at a time, one pipeline holding one announceScript
// call over every announce queued since its last send (at most
// maxRedisBatch, over any number of swarms; one call per swarm on Redis
// Cluster, where a script may touch one slot only), then the sample reads
// of the swarms that need one. Nothing waits for a batch to fill: an idle
// lane sends a lone announce at once; a busy one sends, when its round
// trip returns, whatever queued meanwhile (group commit). Each announce is
// answered only after Redis acknowledged its own write.
//
// A swarm always goes through the same lane and a lane has one send in
// flight, so a swarm's announces (a peer's start, then its stop) reach
// Redis in the order they were queued; within a batch the script applies
// them in that order.
type redisBatcher struct {
	rs    *redisStore
	lanes []chan *pendingAnnounce
	seed  maphash.Seed
	// perCall is how many swarms one script call may cover: all of a
	// batch's on one server, one on a cluster.
	perCall int

	ctx    context.Context // ends at close: cancels sends in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup // the lanes' goroutines
	done   chan struct{}  // closed when every lane has returned
}

const (
	// redisLanes is how many batches a replica has in flight to Redis at
	// once. Redis runs one command at a time, so a second lane lets the
	// tracker encode and decode one batch while Redis runs the other. More
	// lanes make smaller batches (more Redis CPU per announce): on the 2-core
	// machine with the tracker, Redis and the load generator sharing it,
	// `shoal bench tracker` with one Redis replica did 9,462/s with one lane,
	// 9,813/s with two and about 9,220/s with four (medians, alternated runs).
	redisLanes = 2
	// maxRedisBatch bounds the announces of one batch, so one script call
	// holds Redis for a bounded time: about a millisecond, more when the
	// swarms in it have expired peers to trim (at most 500 per swarm).
	maxRedisBatch = 64
	// redisBatchTimeout bounds one batch's round trip, retries included.
	redisBatchTimeout = 5 * time.Second
	// laneQueue bounds the announces queued per lane (the handler's
	// --max-inflight bounds them too).
	laneQueue = 256
	// maxSampleUses bounds the announces one sample read serves (besides
	// Config.RedisSampleReuse): a few hundred newcomers to a large swarm
	// within a second get their peers from many reads, not all from the
	// same 128 entries. A read of a large swarm costs Redis about as much
	// as two announces, so this keeps reads under a tenth of the announces.
	maxSampleUses = 16
)

// errStoreClosed: an announce reached a store being closed.
var errStoreClosed = errors.New("tracker store closed")

// pendingAnnounce is one announce waiting for its lane's next send.
type pendingAnnounce struct {
	mem    string // the swarm's member name
	tenant string // the swarm's tenant, for its index
	now    int64  // Unix ms
	peer   string
	event  string     // the script's event code: eventCode
	e      redisEntry // as written
	value  []byte     // storedValue: signing time, counters, e
	// sample: the peer wants peers, so its swarm must have a fresh sample.
	sample bool
	// index: this replica has not written the swarm into the indexes for
	// a while (redisStore.index): the batch does, after its script.
	index bool
	reply chan batchReply // buffered: the lane never blocks on it
}

// eventCode is the announce script's code for an event: 's' stopped, 'c'
// completed, '-' any other.
func eventCode(ev string) string {
	switch ev {
	case "stopped":
		return "s"
	case "completed":
		return "c"
	}
	return "-"
}

// scriptStatus names the announce script's status bytes.
func scriptStatus(b byte) string {
	switch b {
	case 'j':
		return "joined"
	case 'o':
		return "ok"
	case 'c':
		return "capped"
	case 'l':
		return "left"
	case 'n':
		return "none"
	case 'r':
		return "replay"
	}
	return "unknown status " + strconv.Quote(string(b))
}

// batchReply is what a batch did for one announce.
type batchReply struct {
	status  string
	gone    any        // the script's expired list, on the swarm's first announce of the batch only
	entries []*sampled // the swarm's sample after the batch
	err     error
}

func newRedisBatcher(rs *redisStore, cluster bool) *redisBatcher {
	ctx, cancel := context.WithCancel(context.Background())
	b := &redisBatcher{rs: rs, seed: maphash.MakeSeed(), perCall: maxRedisBatch, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	if cluster {
		b.perCall = 1
	}
	for range redisLanes {
		l := make(chan *pendingAnnounce, laneQueue)
		b.lanes = append(b.lanes, l)
		b.wg.Add(1)
		go b.run(l)
	}
	go func() { b.wg.Wait(); close(b.done) }()
	return b
}

// do queues p and waits for its reply. It does not give up when ctx ends
// once p is queued: the write may already be on its way, and the caller
// must not answer before knowing its outcome. The wait is bounded by the
// batches queued ahead of p, each by redisBatchTimeout.
func (b *redisBatcher) do(ctx context.Context, p *pendingAnnounce) batchReply {
	p.reply = make(chan batchReply, 1)
	lane := b.lanes[maphash.String(b.seed, p.mem)%uint64(len(b.lanes))]
	select {
	case lane <- p:
	case <-ctx.Done():
		return batchReply{err: ctx.Err()}
	case <-b.ctx.Done():
		return batchReply{err: errStoreClosed}
	}
	select {
	case r := <-p.reply:
		return r
	case <-b.done:
		select {
		case r := <-p.reply:
			return r
		default:
			return batchReply{err: errStoreClosed}
		}
	}
}

// close stops the lanes; announces still queued are answered with
// errStoreClosed.
func (b *redisBatcher) close() {
	b.cancel()
	<-b.done
}

func (b *redisBatcher) run(lane chan *pendingAnnounce) {
	defer b.wg.Done()
	batch := make([]*pendingAnnounce, 0, maxRedisBatch)
	for {
		batch = batch[:0]
		select {
		case p := <-lane:
			batch = append(batch, p)
		case <-b.ctx.Done():
			for {
				select {
				case p := <-lane:
					p.reply <- batchReply{err: errStoreClosed}
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxRedisBatch {
			select {
			case p := <-lane:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		b.send(batch)
	}
}

// batchSwarm is one swarm's part of a batch.
type batchSwarm struct {
	mem   string
	keys  []string
	first int   // index in the batch of its first announce
	ann   []int // indexes in the batch of its announces, in order
	// cached is the swarm's last sample when it is fresh enough to reuse;
	// read is the pipeline's read of it otherwise.
	cached *reusedSample
	hint   reusedSample // the last sample, fresh or not (its size hint)
	read   *redis.KeyValueSliceCmd
	nread  int // the count asked of HRANDFIELD
	uses   int // the batch's announces that want peers from it
	call   *scriptCall
	slot   int  // index of the swarm in its call's KEYS groups (1-based)
	trim   bool // the script trims the swarm's expired peers (trimDue)
	index  bool // an announce asked for the swarm's index refresh
	// indexed is the index refresh's last write, sent after the script.
	indexed *redis.IntCmd
}

// scriptCall is one announceScript call of a batch.
type scriptCall struct {
	keys   []string
	swarms []*batchSwarm
	args   []any
	idx    []int // batch indexes of its announces, in ARGV order
	cmd    *redis.Cmd

	gone []any // its reply's expired peers per swarm
	err  error
}

func (b *redisBatcher) send(batch []*pendingAnnounce) {
	rs := b.rs
	// A batch has a deadline of its own: with Redis unreachable, the
	// announces queued behind it fail within a few of these, rather than
	// after go-redis's retries of each (the client may have no read
	// timeout at all, read_timeout=-1).
	ctx, cancel := context.WithTimeout(b.ctx, redisBatchTimeout)
	defer cancel()
	// Group by swarm, in order of first appearance.
	swarms := make([]*batchSwarm, 0, len(batch))
	of := make(map[string]*batchSwarm, len(batch))
	at := make([]*batchSwarm, len(batch))
	for i, p := range batch {
		sw := of[p.mem]
		if sw == nil {
			sw = &batchSwarm{mem: p.mem, keys: rs.swarmKeys(p.mem), first: i, trim: rs.trimDue(p.mem, p.now)}
			if s, ok := rs.reuse.Get(p.mem); ok {
				sw.hint = s
				if now := time.UnixMilli(p.now); !now.Before(s.at) && now.Sub(s.at) < rs.reuseFor {
					sw.cached = &sw.hint
				}
			}
			of[p.mem] = sw
			swarms = append(swarms, sw)
		}
		at[i] = sw
		sw.ann = append(sw.ann, i)
		sw.index = sw.index || p.index
	}
	// One script call per perCall swarms, its announces grouped by swarm
	// (each swarm's in arrival order).
	var calls []*scriptCall
	for i, sw := range swarms {
		if i%b.perCall == 0 {
			calls = append(calls, &scriptCall{})
		}
		c := calls[len(calls)-1]
		c.keys = append(c.keys, sw.keys...)
		c.swarms = append(c.swarms, sw)
		sw.call, sw.slot = c, len(c.swarms)
	}
	for _, c := range calls {
		n := 0
		for _, sw := range c.swarms {
			n += len(sw.ann)
		}
		c.args = append(make([]any, 0, announceHeader+2*len(c.swarms)+4*n),
			rs.ttl.Milliseconds(), rs.skew.Milliseconds(), rs.keyTTL().Milliseconds(),
			rs.lim.swarmPeers, stoppedPerSwarm, trimPerCall, len(c.swarms))
		c.idx = make([]int, 0, n)
		for _, sw := range c.swarms {
			trim := "0"
			if sw.trim {
				trim = "1"
			}
			c.args = append(c.args, len(sw.ann), trim)
			for _, i := range sw.ann {
				p := batch[i]
				c.args = append(c.args, p.now, p.peer, p.event, p.value)
				c.idx = append(c.idx, i)
				if p.sample {
					sw.uses++
				}
			}
		}
	}
	for _, sw := range swarms {
		// A sample serves at most maxSampleUses announces, so a crowd
		// arriving within the reuse window is not all handed the same peers.
		if sw.uses > 0 && (sw.cached == nil || sw.cached.uses+sw.uses > maxSampleUses) {
			sw.cached = nil
			sw.nread = rs.sampleCount(sw.hint)
		}
	}

	// Each command's own error is looked at below, not Pipelined's first.
	pending := calls
	for try := 0; try < 2 && len(pending) > 0; try++ {
		_, _ = rs.c.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, c := range pending {
				c.cmd = announceScript.EvalSha(ctx, pl, c.keys, c.args...)
			}
			// Reads after the writes, so a sample holds the batch's
			// newcomers.
			for _, sw := range swarms {
				if !slicesContains(pending, sw.call) {
					continue
				}
				if sw.nread != 0 {
					sw.read = pl.HRandFieldWithValues(ctx, sw.keys[2], sw.nread)
				}
				if sw.index {
					// The index writes share the script's pipeline and do
					// not wait for its verdict: a swarm whose announces
					// the script all refused (capped, replayed) or whose
					// script failed is indexed all the same, an entry
					// without peers until the sweep removes it. Transient,
					// and accepted for the round trip it saves.
					p := batch[sw.first]
					sw.indexed = rs.index(ctx, pl, sw.keys, sw.mem, p.tenant, p.now)
				}
			}
			return nil
		})
		// A Redis that restarted or flushed its scripts: load it, and run
		// again the calls it refused (which wrote nothing).
		var again []*scriptCall
		for _, c := range pending {
			if redis.HasErrorPrefix(c.cmd.Err(), "NOSCRIPT") {
				again = append(again, c)
			}
		}
		if len(again) == 0 {
			break
		}
		if announceScript.Load(ctx, rs.c).Err() != nil {
			break // the calls answer NOSCRIPT
		}
		pending = again
	}

	// statuses[i] is the batch's i-th announce's.
	statuses := make([]string, len(batch))
	for _, c := range calls {
		var st string
		st, c.gone, c.err = scriptReply(c.cmd, len(c.idx))
		if c.err == nil {
			for j, i := range c.idx {
				statuses[i] = scriptStatus(st[j])
			}
		}
	}
	for _, sw := range swarms {
		if sw.call.err == nil {
			// A trim that stopped at its limit may have left expired
			// peers: the swarm stays due, so the next batch goes on.
			if sw.trim && !trimCut(sw.call.gone, sw.slot) {
				rs.trimmed.Add(sw.mem, batch[sw.first].now)
			}
			if sw.indexed != nil && sw.indexed.Err() == nil {
				rs.indexed.Add(sw.mem, time.UnixMilli(batch[sw.first].now))
			}
			b.settle(sw, batch, statuses)
		}
	}
	for _, c := range calls {
		for _, i := range c.idx {
			sw := at[i]
			r := batchReply{err: c.err}
			if r.err == nil {
				r.status = statuses[i]
				if i == sw.first && sw.slot-1 < len(c.gone) {
					r.gone = c.gone[sw.slot-1]
				}
				if sw.cached != nil {
					r.entries = sw.cached.entries
				}
			}
			batch[i].reply <- r
		}
	}
}

// settle makes sw's sample after the batch: the read, or the cached one
// with the batch's joins added and leaves removed (so a peer that joined
// through this replica is handed out at once), and stores it for reuse.
func (b *redisBatcher) settle(sw *batchSwarm, batch []*pendingAnnounce, statuses []string) {
	rs := b.rs
	var last int64
	for _, i := range sw.ann {
		last = max(last, batch[i].now)
	}
	if sw.read != nil {
		if sw.read.Err() != nil {
			// The writes went through: answer them, with the last sample
			// (however old) or no peers, rather than a 503 that would
			// send the peers away for nothing.
			if len(sw.hint.entries) > 0 {
				sw.cached = &sw.hint
			}
			return
		}
		entries, n := decodeSample(sw.read.Val())
		s := reusedSample{at: time.UnixMilli(last), entries: entries, big: rs.bigSample(sw.nread, n), uses: sw.uses}
		rs.reuse.Add(sw.mem, s)
		sw.cached = &s
		return
	}
	if sw.cached == nil {
		return
	}
	// The batch's writes, the last of each peer's winning: a join adds the
	// peer, a re-announce updates its entry (adds it too when the sample
	// is the whole swarm), a stop removes it.
	type change struct {
		s      *sampled // nil when the peer left
		joined bool     // in this batch
		in     bool     // in the kept sample
	}
	var changed map[string]*change
	var order []string
	for _, i := range sw.ann {
		p, st := batch[i], statuses[i]
		if st != "joined" && st != "left" && st != "ok" {
			continue
		}
		if changed == nil {
			changed = map[string]*change{}
		}
		ch := changed[p.peer]
		if ch == nil {
			ch = &change{}
			changed[p.peer] = ch
			order = append(order, p.peer)
		}
		ch.s = nil
		if st != "left" {
			ch.s = newSampled(p.peer, p.e)
		}
		ch.joined = ch.joined || st == "joined"
	}
	if changed == nil {
		if sw.uses > 0 {
			s := *sw.cached
			s.uses += sw.uses
			rs.reuse.Add(sw.mem, s)
		}
		return
	}
	entries := make([]*sampled, 0, len(sw.cached.entries)+len(order))
	for _, s := range sw.cached.entries {
		if ch, ok := changed[s.id]; ok {
			ch.in = true
			continue
		}
		entries = append(entries, s)
	}
	for _, id := range order {
		// Re-announces of peers outside a large swarm's sample stay out:
		// the sample would grow towards the whole swarm.
		if ch := changed[id]; ch.s != nil && (ch.in || ch.joined || !sw.cached.big) {
			entries = append(entries, ch.s)
		}
	}
	now := reusedSample{at: sw.cached.at, entries: entries, big: sw.cached.big, uses: sw.cached.uses + sw.uses}
	sw.cached = &now // this batch's answers
	kept := now
	if len(entries) > 2*rs.sample {
		// Newcomers would crowd the sample out: read afresh next time,
		// keeping only the size hint.
		kept = reusedSample{big: now.big}
	}
	rs.reuse.Add(sw.mem, kept)
}

// trimCut reports whether the trim of the swarm in KEYS group slot
// (1-based) of a call that answered gone removed as many peers as one call
// may (an id and an entry each), so more may be left.
func trimCut(gone []any, slot int) bool {
	if slot < 1 || slot > len(gone) {
		return false
	}
	g, _ := gone[slot-1].([]any)
	return len(g) >= 2*trimPerCall
}

// scriptReply decodes an announceScript reply of n statuses (one byte
// each, see announceScript).
func scriptReply(cmd *redis.Cmd, n int) (statuses string, gone []any, err error) {
	r, err := cmd.Slice()
	if err != nil {
		return "", nil, err
	}
	if len(r) != 2 {
		return "", nil, fmt.Errorf("announce script answered %d values, want 2", len(r))
	}
	statuses, _ = r[0].(string)
	if len(statuses) != n {
		return "", nil, fmt.Errorf("announce script answered %d statuses for %d announces", len(statuses), n)
	}
	gone, _ = r[1].([]any)
	return statuses, gone, nil
}

// decodeSample decodes a read's entries, once for every announce that
// reuses them, dropping repeated picks (a read by independent picks
// repeats) and entries that do not decode. n counts the distinct ones.
func decodeSample(pairs []redis.KeyValue) (out []*sampled, n int) {
	seen := make(map[string]struct{}, len(pairs))
	out = make([]*sampled, 0, len(pairs))
	for _, kv := range pairs {
		if _, ok := seen[kv.Key]; ok || kv.Key == "" {
			continue
		}
		seen[kv.Key] = struct{}{}
		if e, err := decodeStored([]byte(kv.Value)); err == nil {
			out = append(out, newSampled(kv.Key, e))
		}
	}
	return out, len(seen)
}

func slicesContains(cs []*scriptCall, c *scriptCall) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}
