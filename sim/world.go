package sim

import (
	"math/bits"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/shoal-cdn/shoal/swarm/policy"
)

// bitset is a have-set the simulator can compare word by word; it is the
// policy.Haver a node's neighbours' pickers read.
type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) Has(i int) bool { return i >= 0 && i>>6 < len(b) && b[i>>6]&(1<<(uint(i)&63)) != 0 }
func (b bitset) set(i int)      { b[i>>6] |= 1 << (uint(i) & 63) }
func (b bitset) offers(o bitset) bool { // has something o lacks
	for k, x := range b {
		if x&^o[k] != 0 {
			return true
		}
	}
	return false
}
func (b bitset) minusCount(o bitset) int { // |b \ o|
	n := 0
	for k, x := range b {
		n += bits.OnesCount64(x &^ o[k])
	}
	return n
}
func (b bitset) count() int {
	n := 0
	for _, x := range b {
		n += bits.OnesCount64(x)
	}
	return n
}

var _ policy.Haver = bitset(nil)

// conn is one end of a connection, owned by node `self`: what self asks
// of other, and whether self chokes other.
type conn struct {
	self, other *node
	back        *conn // the other end
	idx         int   // index in self.conns
	closed      bool
	amChoking   bool // self chokes other
	unchokedBy  bool // other unchokes self (== !back.amChoking, kept here so ticks need not touch back)
	srvIdx      int  // index in self.servers while unchokedBy
	// What the choker and top-ups ask about the other end, kept up to date
	// here (connect, deliver, completion) so that a control tick reads
	// only n's own connections, not 40 other nodes' memory.
	otherKey    policy.PeerKey
	otherDone   bool        // other.complete()
	offer       int         // chunks self has that other lacks
	down        policy.Rate // what self receives from other
	queue       []req       // self's requests to other not yet being sent
	active      *flow       // other → self, in transfer
	startAt     time.Duration
	startQueued bool
	ver         uint32
}

type req struct {
	chunk int32
	ready time.Duration // when the request reaches the uploader
}

// node is one simulated peer.
type node struct {
	id     int32
	key    policy.PeerKey
	seed   uint64 // policy.PeerSeed(key)
	class  int
	region string
	up     float64
	down   float64
	// upPayload is up in payload after the wire's cost (setUpPayload),
	// as of n's last reshare; 0: unlimited.
	upPayload float64
	lat       time.Duration
	upload    bool // serves peers
	nat       bool
	isSeed    bool
	alive     bool
	cutOff    bool
	aliveAt   int // index in world.alive

	joinAt, doneAt, leftAt time.Duration
	have                   bitset
	nHave                  int
	picker                 *policy.Picker
	done                   bool // picker.Done(), cached: every neighbour's choker round asks
	choker                 *policy.Choker
	rnd                    *rand.Rand
	conns                  []*conn
	servers                []*conn // the conns whose other end unchokes n: the only ones a top-up can use
	upFlows, downFlows     []*flow
	originActive           int
	assisted               int64              // bytes asked of the origin by origin assist
	ahead                  []uint8            // policy.Ahead for each chunk over the current neighbours
	lane                   *policy.OriginLane // origin designation and takeover clocks, as the session's
	lastAnnounce           time.Duration
	chokeAt                time.Duration // next choker round
	chokeDirty             bool          // a slot may need refilling before chokeAt
	unchoked               int           // peers unchoked at the last choker call
	chokeSeeding           bool          // seeding at the last choker call
	chokeGone              bool          // a neighbour left since the last choker call
	want                   bitset        // media: the segments watched; nil = every chunk

	fromPeers, fromOrigin, uploaded int64
	play                            *playback
}

func (w *world) keyOf(id int) policy.PeerKey { return policy.PeerKey("p" + strconv.Itoa(id)) }

// complete reports whether n holds everything it wants.
func (n *node) complete() bool { return n.picker == nil || n.done }

// wantsFrom reports whether o holds a chunk n wants and lacks. When it does
// not, the picker's Next has nothing to return for o (every lane picks only
// chunks the source has that we are missing), so top-ups skip the call.
func (n *node) wantsFrom(o *node) bool {
	for k, x := range o.have {
		x &^= n.have[k]
		if n.want != nil {
			x &= n.want[k]
		}
		if x != 0 {
			return true
		}
	}
	return false
}

// conn returns n's connection to o, or nil.
func (n *node) connTo(o *node) *conn {
	for _, c := range n.conns {
		if c.other == o {
			return c
		}
	}
	return nil
}

// reachable reports whether a and b may connect: not both behind NAT, not
// separated by a cut.
func (w *world) reachable(a, b *node) bool {
	if a.nat && b.nat {
		return false
	}
	return a.cutOff == b.cutOff && (!a.cutOff || a.region == b.region)
}

// connect links a and b (a dialled b).
func (w *world) connect(a, b *node) {
	ca := &conn{self: a, other: b, amChoking: true, down: policy.Rate{}}
	cb := &conn{self: b, other: a, amChoking: true, down: policy.Rate{}}
	ca.back, cb.back = cb, ca
	ca.otherKey, cb.otherKey = b.key, a.key
	ca.otherDone, cb.otherDone = b.complete(), a.complete()
	ca.offer, cb.offer = a.have.minusCount(b.have), b.have.minusCount(a.have)
	ca.idx, cb.idx = len(a.conns), len(b.conns)
	a.conns = append(a.conns, ca)
	b.conns = append(b.conns, cb)
	w.neighbourJoined(a, b)
	w.neighbourJoined(b, a)
}

// neighbourJoined updates n's view when o connects: availability and the
// origin designation ranks.
func (w *world) neighbourJoined(n, o *node) {
	if n.picker != nil && !n.picker.Done() {
		n.picker.Availability().AddBitfield(o.have)
	}
	if n.ahead != nil {
		for i := range n.ahead {
			if policy.OriginRank(o.seed, i) < policy.OriginRank(n.seed, i) {
				n.ahead[i]++
			}
		}
	}
}

// disconnect closes the connection c (from either end).
func (w *world) disconnect(c *conn) {
	if c.closed {
		return
	}
	for _, e := range []*conn{c, c.back} {
		e.closed = true
		e.ver++
		n, o := e.self, e.other
		last := len(n.conns) - 1
		n.conns[e.idx] = n.conns[last]
		n.conns[e.idx].idx = e.idx
		n.conns[last] = nil
		n.conns = n.conns[:last]
		if e.active != nil {
			w.endFlow(e.active)
			e.active = nil
		}
		e.queue = nil
		n.dropServer(e)
		n.chokeDirty, n.chokeGone = true, true
		if n.picker != nil && !n.picker.Done() {
			n.picker.PeerGone(o.key)
			n.picker.Availability().RemoveBitfield(o.have)
		}
		if n.ahead != nil {
			for i := range n.ahead {
				if policy.OriginRank(o.seed, i) < policy.OriginRank(n.seed, i) {
					n.ahead[i]--
				}
			}
		}
	}
}

// announce connects n to up to Neighbours random reachable peers with room,
// as a tracker response would.
func (w *world) announce(n *node) {
	n.lastAnnounce = w.now
	want := w.sc.Swarm.Neighbours - len(n.conns)
	for try := 0; want > 0 && try < 3*w.sc.Swarm.Neighbours && len(w.alive) > 1; try++ {
		o := w.alive[w.rnd.IntN(len(w.alive))]
		if o == n || len(o.conns) >= w.sc.Swarm.MaxPeers || !w.reachable(n, o) || n.connTo(o) != nil {
			continue
		}
		w.connect(n, o)
		want--
	}
}

// leave takes n out of the swarm.
func (w *world) leave(n *node) {
	if !n.alive {
		return
	}
	for len(n.conns) > 0 {
		w.disconnect(n.conns[len(n.conns)-1])
	}
	for len(n.downFlows) > 0 {
		f := n.downFlows[len(n.downFlows)-1]
		w.endFlow(f)
	}
	n.alive = false
	n.leftAt = w.now
	if n.play != nil {
		if n.picker != nil {
			w.advancePlay(n)
		}
		n.play.stop(w.now)
	}
	for i := range w.copies {
		if n.have.Has(i) {
			w.copies[i]--
		}
	}
	last := len(w.alive) - 1
	w.alive[n.aliveAt] = w.alive[last]
	w.alive[n.aliveAt].aliveAt = n.aliveAt
	w.alive = w.alive[:last]
	n.picker, n.choker, n.ahead, n.lane = nil, nil, nil, nil
}

// addServer records that c.other unchokes n (c is n's end).
func (n *node) addServer(c *conn) {
	if !c.unchokedBy {
		c.unchokedBy, c.srvIdx = true, len(n.servers)
		n.servers = append(n.servers, c)
	}
}

// dropServer records that c.other no longer unchokes n (or is gone).
func (n *node) dropServer(c *conn) {
	if !c.unchokedBy {
		return
	}
	c.unchokedBy = false
	last := len(n.servers) - 1
	n.servers[c.srvIdx] = n.servers[last]
	n.servers[c.srvIdx].srvIdx = c.srvIdx
	n.servers[last] = nil
	n.servers = n.servers[:last]
}

// nodeOf is the node whose key is k ("p" + its number, see keyOf).
func (w *world) nodeOf(k policy.PeerKey) *node {
	id, err := strconv.Atoi(string(k[1:]))
	if err != nil || id < 0 || id >= len(w.nodes) {
		panic("sim: unknown peer key " + string(k))
	}
	return w.nodes[id]
}
