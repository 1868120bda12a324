package tracker

import (
	"bytes"
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/google/btree"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

// swarmKey names a swarm: a content within one tenant. Peers of one tenant
// never learn peers of another, even for the same content ID.
type swarmKey struct {
	tenant  string
	content core.ContentID
}

func (k swarmKey) less(o swarmKey) bool {
	if k.tenant != o.tenant {
		return k.tenant < o.tenant
	}
	return bytes.Compare(k.content[:], o.content[:]) < 0
}

// peerEntry is one peer of one swarm. The indexes make removal O(1), which
// keeps announce cost independent of swarm size.
type peerEntry struct {
	// First what sampling reads of every peer it hands out, so that it
	// sits in the entry's first two cache lines: a sample of 50 is 50
	// entries scattered over the heap.
	id     string
	enc    []byte // see info
	region string
	left   int64
	reg    *region // sw's region of the entry: sampling compares pointers, not names
	// trustedRegion: the region came from a token, not from the peer.
	trustedRegion bool
	// netShared: other peers of the swarm are in the entry's network, so a
	// sample taking it counts it against the network's cap.
	netShared bool
	addrs     peerAddrs

	sw                   *swarm
	pos                  int          // position in sw.list
	prefix               netip.Prefix // of the observed address, for diversity
	uploaded, downloaded int64
	lastSeen             time.Time
	lastTS               int64         // signing time of the last announce (0: unsigned)
	g                    [2]*group     // the entry's groups: [groupLocal] by (region, network), [groupNet] by network
	gIdx                 [2]int        // positions in g[i].peers
	lru                  *list.Element // position in state.lru
}

// info is e as asker gets it. Most askers get the public addresses alone:
// for them e.enc keeps the entry's JSON, made at the first hand-out after
// what it encodes changed (a peer is handed out many times per announce of
// its own, and most announces change nothing in it). It is never changed
// in place: answers are encoded after the lock is released, sharing it.
func (e *peerEntry) info(asker viewer) discovery.PeerInfo {
	pi := discovery.PeerInfo{Peer: e.id, Addrs: e.addrs.visibleTo(asker, nil), Region: e.region, Seed: e.left == 0}
	if e.addrs.publicOnlyTo(asker) {
		if e.enc == nil {
			e.enc = pi.AppendJSON(nil)
		}
		pi.Encoded = e.enc
	}
	return pi
}

// groupKey groups a swarm's peers by region and network, the two things
// sampling cares about: same region first, few from one network.
type groupKey struct {
	region string
	prefix netip.Prefix
}

// The two kinds of group. A peer is in one group of each.
const (
	groupLocal = 0 // by (region, network): a region's peers, network by network
	groupNet   = 1 // by network alone, whatever the regions
)

// region is the local groups of one region of a swarm. Entries point to
// theirs, so sampling tells a region's peers by a pointer compare.
type region struct {
	name   string
	groups []*group // the region's groupLocal groups, for O(1) random picks
	// slots[i] is what sampling reads of groups[i], in one dense array: a
	// sample's first pass (the asker's region) reads a group's peers
	// without loading the group or its network's group, each elsewhere
	// on the heap.
	slots []groupSlot
}

// groupSlot is a copy of what sampling reads of a local group, kept in step
// with it by addToGroup and removeFromGroup (syncSlot).
type groupSlot struct {
	peers []*peerEntry // the group's peers (its slice, shared)
	// solo is the group's one peer when it has one (most networks of a
	// swarm in a region), else nil: sampling takes it without reading
	// the peers.
	solo   *peerEntry
	net    *group // the group's network (group.net)
	capped bool   // group.capped
}

// syncSlot copies what sampling reads of local group g into its region's
// slot.
func (r *region) syncSlot(g *group) {
	sl := groupSlot{peers: g.peers, net: g.net, capped: g.capped}
	if len(g.peers) == 1 {
		sl.solo = g.peers[0]
	}
	r.slots[g.idx] = sl
}

// group is the peers of one swarm in one network (and, for local groups,
// one region). The index fields make removal O(1).
type group struct {
	key   groupKey
	kind  int // groupLocal or groupNet
	peers []*peerEntry
	idx   int // position in swarm.nets (groupNet) or its region's groups (groupLocal)
	// capped: the diversity cap applies to the group's network (not to the
	// tracker's own loopback: one machine's tests or demo).
	capped bool
	// net is the groupNet group of the same network (itself for one); as
	// long as a local group has peers, they are in that group too.
	net *group
	// takenAt and taken (groupNet): peers of the network already put in
	// the sample numbered takenAt; counts of earlier samples are stale.
	takenAt uint64
	taken   int
}

// swarm is every peer announcing one content within one tenant.
type swarm struct {
	key     swarmKey
	peers   map[string]*peerEntry
	list    []*peerEntry            // the same, for a walk without a map's
	byKey   map[groupKey]*group     // the groupLocal groups
	regions map[string]*region      // the same by region
	byNet   map[netip.Prefix]*group // the groupNet groups
	nets    []*group                // the same again, for O(1) random picks
	netSolo []*peerEntry            // per nets[i]: its one peer when it has one, else nil
	// perPrefix is the diversity cap (negative: none); crowded counts the
	// capped networks with more peers than it, where a sample's cap can
	// bind (none: a swarm no bigger than a sample is handed out whole).
	perPrefix, crowded int
	seeds              int
	// completed counts the announces of listed peers that finished the
	// content (event completed).
	completed int64
	// uploaded and downloaded total the increases peers reported, so they do
	// not drop when peers leave. Approximate: a peer that expires and comes
	// back with the same session counters is counted twice.
	uploaded, downloaded int64
}

func newSwarm(key swarmKey, perPrefix int) *swarm {
	return &swarm{key: key, peers: map[string]*peerEntry{}, byKey: map[groupKey]*group{}, regions: map[string]*region{},
		byNet: map[netip.Prefix]*group{}, perPrefix: perPrefix}
}

// stopKey names a peer that left a swarm, to refuse replays of its earlier
// announces.
type stopKey struct {
	swarmKey
	peer string
}

// limits are the caps state enforces; negative means none.
type limits struct {
	swarmPeers, tenantSwarms, swarms, peersTotal, perPrefix int
}

// state is the tracker's whole memory. Not safe for concurrent use: Server
// guards it with a mutex.
type state struct {
	ttl     time.Duration
	rng     *rand.Rand
	lim     limits
	swarms  map[swarmKey]*swarm
	index   *btree.BTreeG[*swarm] // the swarms by key, for paged listing
	tenants map[string]int        // swarms per tenant
	lru     *list.List            // of *peerEntry, least recently announced first
	stopped *lru.Cache[stopKey, int64]
	// quietUntil: no entry is due to expire before it (see expire).
	quietUntil time.Time
	// samples numbers the calls of sample (see group.takenAt); shuffle
	// holds the two levels of sample's lazy permutations between calls.
	samples uint64
	shuffle [2]shuffler
	// took, mine and rest are sample's scratch, reused.
	took       []netTake
	mine, rest []*peerEntry
}

func newState(ttl time.Duration, rng *rand.Rand, lim limits, stoppedMemory int) *state {
	stopped, _ := lru.New[stopKey, int64](stoppedMemory)
	return &state{
		ttl: ttl, rng: rng, lim: lim,
		swarms:  map[swarmKey]*swarm{},
		index:   btree.NewG(32, func(a, b *swarm) bool { return a.key.less(b.key) }),
		tenants: map[string]int{},
		lru:     list.New(),
		stopped: stopped,
	}
}

func (st *state) numPeers() int { return st.lru.Len() }

// expire drops peers silent for longer than the TTL and returns them. The
// LRU list is ordered by last announce, so this costs O(expired). (If the
// clock steps back, order is off by that step and expiry is late by as much.)
//
// Most calls find nothing to drop. st.quietUntil remembers when the oldest
// entry was due as of the last call, so they return without loading it (a
// cache miss per announce): entries leave the front (expired), anywhere
// (a stop) or move to the back (announced again), and none of these makes
// the front due earlier, so the real front is due no earlier than that.
func (st *state) expire(now time.Time) []*peerEntry {
	if !now.After(st.quietUntil) {
		return nil
	}
	var gone []*peerEntry
	for el := st.lru.Front(); el != nil; el = st.lru.Front() {
		e := el.Value.(*peerEntry)
		if now.Sub(e.lastSeen) <= st.ttl {
			st.quietUntil = e.lastSeen.Add(st.ttl)
			return gone
		}
		st.remove(e)
		gone = append(gone, e)
	}
	st.quietUntil = time.Time{} // empty: the next entry's due time is not known yet
	return gone
}

// Errors of state.announce; the handler maps them to statuses.
var (
	errReplay  = errors.New("announce replayed: signed no later than one already accepted from this peer")
	errTooMany = errors.New("tracker full")
)

// admission is what the handler learned from the announce, beyond the
// request: who the peer is to the tracker.
type admission struct {
	key      swarmKey
	region   string // effective: from the grant, else claimed
	trusted  bool   // region from the grant
	addrs    peerAddrs
	regions  []string // where the content may go; empty = anywhere
	observed netip.Addr
}

// outcome of one announce.
type outcome struct {
	sw     *swarm     // the swarm to sample, nil when none
	e      *peerEntry // the peer's entry; nil when stopped or not listed
	joined bool       // a new entry
	left   *peerEntry // the entry a stopped announce removed
	capped string     // why the peer was answered but not listed
}

// announce records req at now.
func (st *state) announce(req *discovery.AnnounceRequest, ad *admission, now time.Time) (outcome, error) {
	sw := st.swarms[ad.key]
	var e *peerEntry
	if sw != nil {
		e = sw.peers[req.Peer]
	}
	if req.TS != 0 {
		if e != nil && req.TS <= e.lastTS {
			return outcome{}, errReplay
		}
		if ts, ok := st.stopped.Peek(stopKey{ad.key, req.Peer}); ok && e == nil && req.TS <= ts {
			return outcome{}, errReplay
		}
	}
	if req.Event == discovery.EventStopped {
		if e == nil {
			return outcome{}, nil
		}
		sw.addCounters(e, req)
		st.remove(e)
		st.stopped.Add(stopKey{ad.key, req.Peer}, req.TS)
		return outcome{left: e}, nil
	}
	if sw == nil {
		if over(len(st.swarms), st.lim.swarms) {
			return outcome{}, fmt.Errorf("%w: %d swarms, the most allowed (--max-swarms)", errTooMany, len(st.swarms))
		}
		if n := st.tenants[ad.key.tenant]; over(n, st.lim.tenantSwarms) {
			return outcome{}, fmt.Errorf("%w: tenant %q has %d swarms, the most allowed (--max-tenant-swarms)", errTooMany, ad.key.tenant, n)
		}
		sw = newSwarm(ad.key, st.lim.perPrefix)
		st.swarms[ad.key] = sw
		st.index.ReplaceOrInsert(sw)
		st.tenants[ad.key.tenant]++
	}
	out := outcome{sw: sw}
	if e == nil {
		switch {
		case over(len(sw.peers), st.lim.swarmPeers):
			out.capped = "swarm full"
		case over(st.lru.Len(), st.lim.peersTotal):
			out.capped = "tracker full"
		}
		if out.capped != "" {
			if len(sw.peers) == 0 { // a swarm made for this peer alone
				st.drop(sw)
				out.sw = nil
			}
			return out, nil
		}
		e = &peerEntry{id: req.Peer, sw: sw, region: ad.region, prefix: prefixOf(ad.observed), pos: len(sw.list)}
		sw.peers[e.id] = e
		sw.list = append(sw.list, e)
		sw.addToGroup(e)
		e.lru = st.lru.PushBack(e)
		e.left = -1 // not a seed yet; counted below
		out.joined = true
	} else {
		st.lru.MoveToBack(e.lru)
		if p := prefixOf(ad.observed); e.region != ad.region || e.prefix != p {
			if e.region != ad.region {
				e.enc = nil
			}
			sw.removeFromGroup(e)
			e.region, e.prefix = ad.region, p
			sw.addToGroup(e)
		}
	}
	e.trustedRegion = ad.trusted
	sw.addCounters(e, req)
	if req.Event == discovery.EventCompleted {
		sw.completed++
	}
	if e.left == 0 {
		sw.seeds--
	}
	if req.Left == 0 {
		sw.seeds++
	}
	if (e.left == 0) != (req.Left == 0) || !slices.Equal(e.addrs.public, ad.addrs.public) {
		e.enc = nil // what it encodes changed
	}
	e.left = req.Left
	e.addrs = ad.addrs
	e.lastSeen = now
	e.lastTS = req.TS
	out.e = e
	return out, nil
}

// over reports whether n has reached a limit (negative: none).
func over(n, limit int) bool { return limit >= 0 && n >= limit }

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
	sw.list = swapRemove(sw.list, e.pos, func(m *peerEntry, i int) { m.pos = i })
	sw.removeFromGroup(e)
	if e.left == 0 {
		sw.seeds--
	}
	if e.lastTS != 0 {
		st.stopped.Add(stopKey{sw.key, e.id}, e.lastTS)
	}
	if len(sw.peers) == 0 {
		st.drop(sw)
	}
}

// drop forgets an empty swarm.
func (st *state) drop(sw *swarm) {
	delete(st.swarms, sw.key)
	st.index.Delete(sw)
	if st.tenants[sw.key.tenant]--; st.tenants[sw.key.tenant] <= 0 {
		delete(st.tenants, sw.key.tenant)
	}
}

func (sw *swarm) addToGroup(e *peerEntry) {
	r := sw.regions[e.region]
	if r == nil {
		r = &region{name: e.region}
		sw.regions[e.region] = r
	}
	e.reg = r
	k := groupKey{e.region, e.prefix}
	g := sw.byKey[k]
	if g == nil {
		g = &group{key: k, kind: groupLocal, idx: len(r.groups)}
		sw.byKey[k] = g
		r.groups = append(r.groups, g)
		r.slots = append(r.slots, groupSlot{})
	}
	n := sw.byNet[e.prefix]
	if n == nil {
		n = &group{key: groupKey{prefix: e.prefix}, kind: groupNet, idx: len(sw.nets), capped: !e.prefix.Addr().IsLoopback()}
		n.net = n
		sw.byNet[e.prefix] = n
		sw.nets = append(sw.nets, n)
		sw.netSolo = append(sw.netSolo, nil)
	}
	g.net, g.capped = n, n.capped
	for kind, g := range [2]*group{g, n} {
		e.g[kind], e.gIdx[kind] = g, len(g.peers)
		g.peers = append(g.peers, e)
	}
	r.syncSlot(g)
	if e.netShared = len(n.peers) > 1; len(n.peers) == 2 {
		n.peers[0].netShared = true
	}
	sw.netSolo[n.idx] = nil
	if len(n.peers) == 1 {
		sw.netSolo[n.idx] = e
	}
	if n.capped && sw.perPrefix >= 0 && len(n.peers) == sw.perPrefix+1 {
		sw.crowded++
	}
}

func (sw *swarm) removeFromGroup(e *peerEntry) {
	r := e.reg
	e.reg = nil
	for kind, g := range e.g {
		e.g[kind] = nil
		if kind == groupNet && g.capped && sw.perPrefix >= 0 && len(g.peers) == sw.perPrefix+1 {
			sw.crowded--
		}
		g.peers = swapRemove(g.peers, e.gIdx[kind], func(m *peerEntry, i int) { m.gIdx[kind] = i })
		if len(g.peers) == 1 && kind == groupNet {
			g.peers[0].netShared = false
			sw.netSolo[g.idx] = g.peers[0]
		}
		if len(g.peers) > 0 {
			if kind == groupLocal {
				r.syncSlot(g)
			}
			continue
		}
		if kind == groupNet {
			delete(sw.byNet, g.key.prefix)
			sw.netSolo = swapRemove(sw.netSolo, g.idx, func(*peerEntry, int) {}) // in step with nets
			sw.nets = swapRemove(sw.nets, g.idx, func(m *group, i int) { m.idx = i })
			continue
		}
		delete(sw.byKey, g.key)
		r.slots = swapRemove(r.slots, g.idx, func(groupSlot, int) {}) // in step with groups
		if r.groups = swapRemove(r.groups, g.idx, func(m *group, i int) { m.idx = i }); len(r.groups) == 0 {
			delete(sw.regions, r.name)
		}
	}
}

// swapRemove removes s[i] by moving the last element into its place, and
// tells that element its new index.
func swapRemove[T any](s []T, i int, moved func(T, int)) []T {
	last := len(s) - 1
	if i != last {
		s[i] = s[last]
		moved(s[i], i)
	}
	var zero T
	s[last] = zero
	return s[:last]
}

// asker is the peer a sample is for.
type asker struct {
	self    *peerEntry // the asker's own entry, if it has one
	id      string
	region  string
	ip      netip.Addr
	regions []string // residency: only peers with a granted region in these; empty = any
	v       viewer   // ip, classified: sample sets it before any eligible, which reads it
}

// eligible reports whether a may get e: not itself, an address it can
// dial, and under residency a granted region it may get. It reads a.v, so
// only sample, which sets it first, and what it calls call it.
func (a *asker) eligible(e *peerEntry) bool {
	if e == a.self || a.self == nil && e.id == a.id || !e.addrs.anyVisibleTo(a.v) {
		return false
	}
	return len(a.regions) == 0 || e.trustedRegion && slices.Contains(a.regions, e.region)
}

// sample returns up to k random peers of sw for a: its own region first,
// then the rest. Among the peers a may get:
//   - never a itself;
//   - only peers with an address a can dial (see peerAddrs.visible);
//   - under residency, only peers whose granted region is allowed;
//   - at most lim.perPrefix peers from one /24 or /48, so identities faked
//     from one network get a few slots, not the whole set.
//
// It picks networks uniformly at random, then peers within each: a peer
// in a crowded network is less likely to be returned than one alone in its
// own, which is the point. The cost grows with the networks looked at, not
// with the peers in them (each is looked into a bounded number of times),
// so a thousand identities in one /24 cost what a few do. A swarm whose
// peers all fit in the sample, with no network over the cap, is handed out
// whole (sampleAll): every way of picking gives the same set.
//
// The sample is appended to buf[:0] (nil: a new slice).
func (st *state) sample(sw *swarm, a *asker, k int, buf []discovery.PeerInfo) []discovery.PeerInfo {
	out := buf[:0]
	if out == nil {
		out = make([]discovery.PeerInfo, 0, min(k, len(sw.peers)))
	}
	if k <= 0 {
		return out
	}
	a.v = viewerOf(a.ip)
	own := sw.regions[a.region] // nil when no peer of a's region is here
	others := len(sw.list)
	if a.self != nil {
		others--
	}
	if others <= k && sw.crowded == 0 {
		return st.sampleAll(sw, a, own, out)
	}
	capping := st.lim.perPrefix >= 0
	st.samples++
	epoch := st.samples
	taken := func(n *group) int { // per capped network, across regions
		if n.takenAt != epoch {
			return 0
		}
		return n.taken
	}
	// take appends to out, in random order, up to want peers of peers that
	// a may get; with other set, only peers of regions other than a's.
	take := func(peers []*peerEntry, want int, other bool) {
		if len(peers) == 1 { // most networks of a swarm: no permutation to draw
			if e := peers[0]; (!other || e.reg != own) && a.eligible(e) {
				out = append(out, e.info(a.v))
			}
			return
		}
		// A bounded look per group: a network of identities none of which
		// a can use (addresses it cannot dial, regions it may not get)
		// must not cost a scan of all of them on every announce.
		before, looks := len(out), 4*want+64
		lazyShuffle(st.rng, peers, &st.shuffle[1], func(e *peerEntry) bool {
			if (!other || e.reg != own) && a.eligible(e) {
				out = append(out, e.info(a.v))
			}
			looks--
			return len(out)-before < want && looks > 0
		})
	}
	// The asker's region, network by network; then every network for peers
	// of other regions. Both passes cost the networks looked at (an
	// attacker's claimed regions do not multiply them in the second).
	// A group of one peer is taken without reading the group: no cap can
	// bind on it (unless the cap is 0). In the first pass, a network's one
	// peer of a's region is looked at before anything else of the network
	// is taken, and is counted against the network only when it has other
	// peers, for the second; there, a network of one peer either has it of
	// a's region (looked at already) or nothing of it is taken yet.
	//
	// The first pass reads the region's dense slots, not its groups, and
	// meets each network once (a region has one group per network), so no
	// cap has been used yet when it looks at a network: what it takes of
	// capped networks is noted in st.took and charged to them only if the
	// second pass runs.
	soloOK := !capping || st.lim.perPrefix > 0
	otherRegions := len(sw.regions)
	took := st.took[:0]
	if own != nil {
		otherRegions--
		lazyShuffleIdx(st.rng, len(own.slots), &st.shuffle[0], func(i int) bool {
			sl := &own.slots[i]
			if e := sl.solo; e != nil && soloOK {
				if a.eligible(e) {
					out = append(out, e.info(a.v))
					if capping && sl.capped && e.netShared {
						took = append(took, netTake{sl.net, 1})
					}
				}
				return len(out) < k
			}
			want := k - len(out)
			capped := capping && sl.capped
			if capped {
				want = min(want, st.lim.perPrefix)
			}
			if want > 0 {
				before := len(out)
				take(sl.peers, want, false)
				if capped && len(out) > before {
					took = append(took, netTake{sl.net, len(out) - before})
				}
			}
			return len(out) < k
		})
	}
	if len(out) < k && otherRegions > 0 {
		for _, t := range took {
			t.net.taken, t.net.takenAt = taken(t.net)+t.n, epoch
		}
		lazyShuffleIdx(st.rng, len(sw.nets), &st.shuffle[0], func(i int) bool {
			if e := sw.netSolo[i]; e != nil && soloOK {
				if e.reg != own && a.eligible(e) {
					out = append(out, e.info(a.v))
				}
				return len(out) < k
			}
			n := sw.nets[i]
			want := k - len(out)
			capped := capping && n.capped
			if capped {
				want = min(want, st.lim.perPrefix-taken(n))
			}
			if want > 0 {
				before := len(out)
				take(n.peers, want, true)
				if capped {
					n.taken, n.takenAt = taken(n)+len(out)-before, epoch
				}
			}
			return len(out) < k
		})
	}
	clear(took) // the groups must not be kept alive by the scratch
	st.took = took[:0]
	return out
}

// netTake is what a sample's first pass took of a capped network.
type netTake struct {
	net *group
	n   int
}

// sampleAll is sample for a swarm whose peers, a aside, all fit in the
// sample and where no network has more peers than the cap: every peer a may
// get, those of its region (own) first, each part in random order. One walk
// over the swarm's flat list sorts the peers into the two parts; each is
// shuffled as pointers, then handed out.
func (st *state) sampleAll(sw *swarm, a *asker, own *region, out []discovery.PeerInfo) []discovery.PeerInfo {
	mine, rest := st.mine[:0], st.rest[:0]
	for _, e := range sw.list {
		if !a.eligible(e) {
			continue
		}
		if own != nil && e.reg == own {
			mine = append(mine, e)
		} else {
			rest = append(rest, e)
		}
	}
	st.rng.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
	st.rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	for _, part := range [2][]*peerEntry{mine, rest} {
		for _, e := range part {
			out = append(out, e.info(a.v))
		}
	}
	clear(mine) // the scratch must not keep entries alive
	clear(rest)
	st.mine, st.rest = mine[:0], rest[:0]
	return out
}

// shuffleScratch is the longest list lazyShuffle permutes in a reused
// slice; longer ones keep their swaps in a map.
const shuffleScratch = 1 << 12

// shuffler is lazyShuffle's scratch, reused across calls: slot i holds the
// element at position i of the permutation drawn so far if its gen is the
// call's, else that element is i. A call starts a new gen, which forgets
// the last permutation without clearing it.
type shuffler struct {
	gen   uint32
	slots []shuffleSlot
}

type shuffleSlot struct {
	v   int32
	gen uint32
}

// lazyShuffle calls visit on the elements of list in uniformly random order
// until visit returns false or the list is exhausted. It draws the
// permutation lazily (Fisher–Yates), so the cost is the number of elements
// visited, not the length of list: for a short list in sc (reused across
// calls), for a long one with the swaps in a map. A nested call must pass
// another scratch.
func lazyShuffle[T any](rng *rand.Rand, list []T, sc *shuffler, visit func(T) bool) {
	lazyShuffleIdx(rng, len(list), sc, func(i int) bool { return visit(list[i]) })
}

// lazyShuffleIdx is lazyShuffle over the indexes 0…n-1.
func lazyShuffleIdx(rng *rand.Rand, n int, sc *shuffler, visit func(int) bool) {
	if n <= shuffleScratch {
		if len(sc.slots) < n {
			sc.slots = make([]shuffleSlot, shuffleScratch)
		}
		if sc.gen++; sc.gen == 0 { // wrapped: the old gens must not match
			clear(sc.slots)
			sc.gen = 1
		}
		gen, slots := sc.gen, sc.slots[:n]
		for i := 0; i < n; i++ {
			j := i + rng.IntN(n-i)
			vi, vj := i, j
			if s := slots[i]; s.gen == gen {
				vi = int(s.v)
			}
			if s := slots[j]; s.gen == gen {
				vj = int(s.v)
			}
			slots[j] = shuffleSlot{int32(vi), gen}
			if !visit(vj) {
				return
			}
		}
		return
	}
	var moved map[int]int
	at := func(i int) int {
		if v, ok := moved[i]; ok {
			return v
		}
		return i
	}
	for i := 0; i < n; i++ {
		j := i + rng.IntN(n-i)
		vi, vj := at(i), at(j)
		if j != i {
			if moved == nil {
				moved = make(map[int]int)
			}
			moved[j] = vi
		}
		if !visit(vj) {
			return
		}
	}
}

// SwarmStats is one swarm as GET /api/swarms reports it.
type SwarmStats struct {
	Tenant     string         `json:"tenant,omitempty"`
	Content    core.ContentID `json:"content"`
	Peers      int            `json:"peers"`
	Seeds      int            `json:"seeds"`
	Leechers   int            `json:"leechers"`
	Completed  int64          `json:"completed"`  // completed events from listed peers
	Uploaded   int64          `json:"uploaded"`   // bytes peers reported uploading
	Downloaded int64          `json:"downloaded"` // bytes peers reported downloading
}

func (sw *swarm) stats() SwarmStats {
	return SwarmStats{
		Tenant: sw.key.tenant, Content: sw.key.content, Peers: len(sw.peers), Seeds: sw.seeds,
		Leechers: len(sw.peers) - sw.seeds, Completed: sw.completed, Uploaded: sw.uploaded, Downloaded: sw.downloaded,
	}
}

// sortByPeers orders swarms most peers first, then by tenant and content.
func sortByPeers(out []SwarmStats) {
	slices.SortFunc(out, func(a, b SwarmStats) int {
		if c := cmp.Compare(b.Peers, a.Peers); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return cmp.Compare(a.Content.String(), b.Content.String())
	})
}

// page returns up to limit swarms in key order after the key after (from
// the start when after is nil), and whether more follow. It costs
// O(log swarms + limit), so the lock is held briefly however many swarms
// there are.
func (st *state) page(after *swarmKey, limit int) ([]SwarmStats, bool) {
	out := make([]SwarmStats, 0, min(limit, len(st.swarms)))
	more := false
	visit := func(sw *swarm) bool {
		if after != nil && sw.key == *after {
			return true
		}
		if len(out) == limit {
			more = true
			return false
		}
		out = append(out, sw.stats())
		return true
	}
	if after == nil {
		st.index.Ascend(visit)
	} else {
		st.index.AscendGreaterOrEqual(&swarm{key: *after}, visit)
	}
	return out, more
}
