package tracker

import (
	"context"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

// memStore is the in-process peer store: state behind one mutex. It keeps
// the swarm gauges of m current as it changes.
type memStore struct {
	m *metrics

	mu sync.Mutex // guards st, including the rand source st uses
	st *state
}

func newMemStore(cfg Config, m *metrics) *memStore {
	return &memStore{m: m, st: newState(cfg.PeerTTL, cfg.Rand, cfg.limits(), cfg.StoppedMemory)}
}

func (ms *memStore) announce(_ context.Context, req *discovery.AnnounceRequest, ad admission, want int, now time.Time) (announceResult, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	res := announceResult{expired: ms.expireLocked(now)}
	out, err := ms.st.announce(req, &ad, now)
	if err == nil && out.sw != nil && req.Event != discovery.EventStopped {
		bp := peerBufs.Get().(*[]discovery.PeerInfo)
		*bp = ms.st.sample(out.sw, &asker{self: out.e, id: req.Peer, region: ad.region, ip: ad.observed, regions: ad.regions}, want, *bp)
		res.peers, res.pooled = *bp, bp
	}
	res.joined, res.left, res.capped = out.joined, out.left != nil, out.capped
	return res, err
}

func (ms *memStore) expire(_ context.Context, now time.Time) ([]leftPeer, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.expireLocked(now), nil
}

func (ms *memStore) expireLocked(now time.Time) []leftPeer {
	gone := ms.st.expire(now)
	if len(gone) == 0 {
		return nil
	}
	out := make([]leftPeer, len(gone))
	for i, e := range gone {
		out[i] = leftPeer{key: e.sw.key, id: e.id, ip: e.addrs.observed}
	}
	return out
}

// refreshGauges brings the swarm gauges up to date. They cost a walk over
// every swarm, so /metrics calls it when scraped, not every announce.
func (ms *memStore) refreshGauges() {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.m.swarms.Set(float64(len(ms.st.swarms)))
	ms.m.peers.Set(float64(ms.st.numPeers()))
	seeds := 0
	for _, sw := range ms.st.swarms {
		seeds += sw.seeds
	}
	ms.m.seeds.Set(float64(seeds))
}

func (ms *memStore) page(_ context.Context, after *swarmKey, limit int, _ time.Time) ([]SwarmStats, *swarmKey, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	out, more := ms.st.page(after, limit)
	if !more || len(out) == 0 {
		return out, nil, nil
	}
	last := out[len(out)-1]
	return out, &swarmKey{last.Tenant, last.Content}, nil
}

// listed costs O(swarms), under the reports' rate limit.
func (ms *memStore) listed(_ context.Context, content core.ContentID, peer string, _ time.Time) (bool, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for k, sw := range ms.st.swarms {
		if k.content == content && sw.peers[peer] != nil {
			return true, nil
		}
	}
	return false, nil
}

func (ms *memStore) close() error { return nil }

// peerBufs holds the slices samples are made in, between announces: a
// sample of 50 peers is about 7 KiB, most of what an announce allocates.
// The memory store takes one per announce; the handler gives it back with
// releasePeers once the answer is encoded.
var peerBufs = sync.Pool{New: func() any { return new([]discovery.PeerInfo) }}

// maxPooledPeers bounds the samples whose slices are kept for reuse.
const maxPooledPeers = 256

// releasePeers returns a sample's slice to peerBufs (nil: none). Nothing
// may use the sample after.
func releasePeers(bp *[]discovery.PeerInfo) {
	if bp == nil || cap(*bp) > maxPooledPeers {
		return
	}
	clear(*bp) // the entries' addresses and encodings must not be kept alive
	*bp = (*bp)[:0]
	peerBufs.Put(bp)
}
