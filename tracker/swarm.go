package tracker

import (
	"cmp"
	"container/list"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

// peerEntry is one peer of one swarm. The indexes make removal O(1), which
// keeps announce cost independent of swarm size.
type peerEntry struct {
	id                         string
	sw                         *swarm
	addrs                      []string
	region                     string
	uploaded, downloaded, left int64
	lastSeen                   time.Time
	allIdx, regionIdx          int           // positions in sw.all and sw.byRegion[region]
	lru                        *list.Element // position in state.lru
}

func (e *peerEntry) info() discovery.PeerInfo {
	return discovery.PeerInfo{Peer: e.id, Addrs: e.addrs, Region: e.region, Seed: e.left == 0}
}

// swarm is every peer announcing one content.
type swarm struct {
	content  core.ContentID
	peers    map[string]*peerEntry
	all      []*peerEntry            // the peers again, for O(1) random picks
	byRegion map[string][]*peerEntry // the peers by region, same reason
	seeds    int
	// uploaded and downloaded total the increases peers reported, so they do
	// not drop when peers leave. Approximate: a peer that expires and comes
	// back with the same session counters is counted twice.
	uploaded, downloaded int64
}

// state is the tracker's whole memory. Not safe for concurrent use: Server
// guards it with a mutex.
type state struct {
	ttl    time.Duration
	rng    *rand.Rand
	swarms map[core.ContentID]*swarm
	lru    *list.List // of *peerEntry, least recently announced first
}

func newState(ttl time.Duration, rng *rand.Rand) *state {
	return &state{ttl: ttl, rng: rng, swarms: map[core.ContentID]*swarm{}, lru: list.New()}
}

func (st *state) numPeers() int { return st.lru.Len() }

// expire drops peers silent for longer than the TTL and returns how many.
// The LRU list is ordered by last announce, so this costs O(expired). (If the
// clock steps back, order is off by that step and expiry is late by as much.)
func (st *state) expire(now time.Time) int {
	n := 0
	for el := st.lru.Front(); el != nil; el = st.lru.Front() {
		e := el.Value.(*peerEntry)
		if now.Sub(e.lastSeen) <= st.ttl {
			break
		}
		st.remove(e)
		n++
	}
	return n
}

// announce records req at now and returns the entry, or nil for "stopped".
func (st *state) announce(req *discovery.AnnounceRequest, now time.Time) *peerEntry {
	sw := st.swarms[req.Content]
	var e *peerEntry
	if sw != nil {
		e = sw.peers[req.Peer]
	}
	if req.Event == discovery.EventStopped {
		if e != nil {
			sw.addCounters(e, req)
			st.remove(e)
		}
		return nil
	}
	if sw == nil {
		sw = &swarm{content: req.Content, peers: map[string]*peerEntry{}, byRegion: map[string][]*peerEntry{}}
		st.swarms[req.Content] = sw
	}
	if e == nil {
		e = &peerEntry{id: req.Peer, sw: sw, region: req.Region, allIdx: len(sw.all)}
		sw.peers[e.id] = e
		sw.all = append(sw.all, e)
		e.regionIdx = len(sw.byRegion[e.region])
		sw.byRegion[e.region] = append(sw.byRegion[e.region], e)
		e.lru = st.lru.PushBack(e)
		e.left = -1 // not a seed yet; counted below
	} else {
		st.lru.MoveToBack(e.lru)
		if e.region != req.Region {
			sw.removeRegion(e)
			e.region = req.Region
			e.regionIdx = len(sw.byRegion[e.region])
			sw.byRegion[e.region] = append(sw.byRegion[e.region], e)
		}
	}
	sw.addCounters(e, req)
	if e.left == 0 {
		sw.seeds--
	}
	if req.Left == 0 {
		sw.seeds++
	}
	e.left = req.Left
	e.addrs = slices.Clone(req.Addrs)
	e.lastSeen = now
	return e
}

// addCounters adds what the peer transferred since its last announce. A
// counter that went down means the peer restarted its session.
func (sw *swarm) addCounters(e *peerEntry, req *discovery.AnnounceRequest) {
	du, dd := req.Uploaded-e.uploaded, req.Downloaded-e.downloaded
	if du < 0 {
		du = req.Uploaded
	}
	if dd < 0 {
		dd = req.Downloaded
	}
	sw.uploaded += du
	sw.downloaded += dd
	e.uploaded, e.downloaded = req.Uploaded, req.Downloaded
}

func (st *state) remove(e *peerEntry) {
	sw := e.sw
	st.lru.Remove(e.lru)
	delete(sw.peers, e.id)
	last := sw.all[len(sw.all)-1]
	sw.all[e.allIdx], last.allIdx = last, e.allIdx
	sw.all[len(sw.all)-1] = nil
	sw.all = sw.all[:len(sw.all)-1]
	sw.removeRegion(e)
	if e.left == 0 {
		sw.seeds--
	}
	if len(sw.peers) == 0 {
		delete(st.swarms, sw.content)
	}
}

func (sw *swarm) removeRegion(e *peerEntry) {
	rl := sw.byRegion[e.region]
	last := rl[len(rl)-1]
	rl[e.regionIdx], last.regionIdx = last, e.regionIdx
	rl[len(rl)-1] = nil
	rl = rl[:len(rl)-1]
	if len(rl) == 0 {
		delete(sw.byRegion, e.region)
	} else {
		sw.byRegion[e.region] = rl
	}
}

// sample returns up to k random peers of self's swarm other than self: its
// own region first, then the rest. Each part is uniformly random.
func (st *state) sample(self *peerEntry, k int) []discovery.PeerInfo {
	sw := self.sw
	same := sw.byRegion[self.region]
	out := make([]discovery.PeerInfo, 0, min(k, len(sw.all)-1))
	out = pick(st.rng, out, same, len(same)-1, k, func(e *peerEntry) bool { return e == self })
	if rest := k - len(out); rest > 0 {
		out = pick(st.rng, out, sw.all, len(sw.all)-len(same), rest,
			func(e *peerEntry) bool { return e.region == self.region })
	}
	return out
}

// pick appends up to want random entries of list that skip rejects; eligible
// is how many entries skip accepts. When eligible is large it samples by
// rejection, so the cost is O(want) not O(len(list)).
func pick(rng *rand.Rand, out []discovery.PeerInfo, list []*peerEntry, eligible, want int, skip func(*peerEntry) bool) []discovery.PeerInfo {
	if eligible <= 0 || want <= 0 {
		return out
	}
	if eligible <= 2*want || len(list) > 4*eligible {
		// Few candidates, or mostly skipped ones: collect and shuffle the head.
		var cand []*peerEntry
		for _, e := range list {
			if !skip(e) {
				cand = append(cand, e)
			}
		}
		n := min(want, len(cand))
		for i := 0; i < n; i++ {
			j := i + rng.IntN(len(cand)-i)
			cand[i], cand[j] = cand[j], cand[i]
			out = append(out, cand[i].info())
		}
		return out
	}
	chosen := make(map[int]struct{}, want)
	for len(chosen) < want {
		i := rng.IntN(len(list))
		if _, dup := chosen[i]; dup || skip(list[i]) {
			continue
		}
		chosen[i] = struct{}{}
		out = append(out, list[i].info())
	}
	return out
}

// SwarmStats is one swarm as GET /api/swarms reports it.
type SwarmStats struct {
	Content    core.ContentID `json:"content"`
	Peers      int            `json:"peers"`
	Seeds      int            `json:"seeds"`
	Leechers   int            `json:"leechers"`
	Uploaded   int64          `json:"uploaded"`   // bytes peers reported uploading
	Downloaded int64          `json:"downloaded"` // bytes peers reported downloading
}

func (st *state) stats() []SwarmStats {
	out := make([]SwarmStats, 0, len(st.swarms))
	for _, sw := range st.swarms {
		out = append(out, SwarmStats{
			Content: sw.content, Peers: len(sw.peers), Seeds: sw.seeds, Leechers: len(sw.peers) - sw.seeds,
			Uploaded: sw.uploaded, Downloaded: sw.downloaded,
		})
	}
	slices.SortFunc(out, func(a, b SwarmStats) int {
		if c := cmp.Compare(b.Peers, a.Peers); c != 0 {
			return c
		}
		return cmp.Compare(a.Content.String(), b.Content.String())
	})
	return out
}
