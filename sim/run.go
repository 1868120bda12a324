package sim

import (
	"context"
	"math"
	"math/rand/v2"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// world is one simulation run.
type world struct {
	sc        *Scenario
	p2p       bool
	order     policy.Order
	rnd       *rand.Rand
	q         queue
	now       time.Duration
	chunks    int
	chunkSize int64
	total     int64
	nodes     []*node
	alive     []*node
	seeds     []*node
	copies    []int32 // alive nodes holding each chunk
	edge      int     // live: segments published

	originFlows   []*flow
	originShare   float64       // the share new origin flows get
	wire          core.WireCost // Scenario.Wire, resolved
	originApplied float64       // the share every origin flow was last given
	epochPending  bool

	originBytes, peerBytes    int64
	sampleOrigin, samplePeers float64
	completed, leechers       int
	pendingJoins              int
	states                    []policy.PeerState
	picked                    []*node
	series                    []Sample
	events                    int64
	hooks                     *hooks // tests only
}

// hooks let tests observe a run from inside.
type hooks struct {
	deliver     func(n *node, chunk int)
	sample      func(w *world)
	originStart func(w *world, n *node, chunk int) // an origin fetch is requested
	// A media viewer's player and gateway: a request and what the rules
	// made of it, a segment sent to the player, a look-ahead set.
	request     func(w *world, n *node, seg int, st policy.Step)
	liveRequest func(w *world, n *node, seg int, st policy.LiveStep)
	sent        func(w *world, n *node, seg int)
	lookahead   func(w *world, n *node, seg int, ahead []policy.SegmentDue)
}

// Run simulates sc once (P2P on or off as sc says) and returns the result.
// It checks ctx between events.
func Run(ctx context.Context, sc *Scenario) (*Result, error) { return run(ctx, sc, nil) }

func run(ctx context.Context, sc *Scenario, h *hooks) (*Result, error) {
	w := &world{hooks: h, sc: sc, p2p: sc.P2P(), order: sc.PickOrder(), chunkSize: int64(sc.Content.Chunk), total: int64(sc.Content.Size)}
	w.rnd = rand.New(rand.NewPCG(sc.Seed, 0x5eed))
	w.chunks = int((w.total + w.chunkSize - 1) / w.chunkSize)
	w.copies = make([]int32, w.chunks)
	w.wire = sc.Wire.Cost()
	w.originShare = share(w.originCapacity(), 1)
	w.edge = w.chunks
	if sc.Kind == KindLive {
		w.edge = 0
		seg := sc.Media.Segment.D()
		for k := range w.chunks {
			w.q.push(event{at: time.Duration(k+1) * seg, kind: evProduce, n: int32(k)})
		}
	}
	for range sc.Seeds.Count {
		cl := max(0, sc.classIndex(sc.Seeds.Class))
		w.schedule(0, cl, true)
	}
	w.scheduleJoins()
	for k, e := range sc.Events {
		w.q.push(event{at: e.At.D(), kind: evScenario, n: int32(k)})
	}
	w.q.push(event{at: sc.Sample.D(), kind: evSample})

	end := sc.Duration.D()
	for len(w.q.h) > 0 {
		e := w.q.pop()
		if e.at > end {
			break
		}
		w.now = e.at
		w.events++
		if w.events&0xffff == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		w.handle(e)
		if sc.Kind == KindFile && w.pendingJoins == 0 && w.completed == w.leechers && w.leechers > 0 {
			break
		}
	}
	if sc.Kind != KindFile && w.now < end {
		w.now = end
	}
	w.sample()
	return w.result(), nil
}

func (w *world) handle(e event) {
	switch e.kind {
	case evFlowDone:
		if !e.f.done && e.ver == e.f.ver {
			w.flowDone(e.f)
		}
	case evConnStart:
		if e.ver == e.c.ver {
			e.c.startQueued = false
			w.kick(e.c)
		}
	case evOriginStart:
		if e.f.to.alive && !e.f.to.cutOff {
			w.startFlow(e.f)
		} else if e.f.to.alive {
			e.f.to.originActive--
			e.f.to.picker.Failed(int(e.f.chunk), policy.Origin)
			if p := e.f.to.play; p != nil {
				delete(p.originNow, int(e.f.chunk))
			}
		}
	case evTick:
		w.tick(w.nodes[e.n])
	case evJoin:
		w.join(w.nodes[e.n])
	case evLeave:
		n := w.nodes[e.n]
		replace := w.sc.Kind == KindLive && w.sc.Leave.Churn > 0 && n.alive && n.play != nil && n.play.pos < w.chunks
		w.leave(n)
		if replace {
			w.schedule(w.now+time.Second, w.pickClass(), false)
		}
	case evProduce:
		w.edge = int(e.n) + 1
		for _, n := range w.alive {
			if n.picker != nil {
				n.picker.SetEdge(w.edge)
			}
			if n.play != nil && n.play.next == w.edge-1 {
				w.ask(n) // its player was waiting for this segment
			}
		}
	case evPlayer:
		if n := w.nodes[e.n]; n.alive && n.play != nil && n.play.askAt == e.at {
			n.play.askAt = -1
			w.ask(n)
		}
	case evLate:
		w.late(w.nodes[e.n], int(e.seg))
	case evDue:
		w.liveDue(w.nodes[e.n], int(e.seg))
	case evScenario:
		w.scenarioEvent(w.sc.Events[e.n])
	case evSample:
		w.sample()
		w.q.push(event{at: w.now + w.sc.Sample.D(), kind: evSample})
	case evOriginEpoch:
		w.originEpoch()
	}
}

func (w *world) pickClass() int {
	total := 0.0
	for _, c := range w.sc.Classes {
		total += c.Share
	}
	x := w.rnd.Float64() * total
	for k, c := range w.sc.Classes {
		if x < c.Share {
			return k
		}
		x -= c.Share
	}
	return len(w.sc.Classes) - 1
}

func (w *world) scheduleJoins() {
	j := w.sc.Joins
	at := j.Start.D()
	for k := range j.Count {
		var t time.Duration
		switch {
		case j.Over <= 0:
			t = at
		case j.Process == "poisson":
			mean := float64(j.Over.D()) / float64(j.Count)
			at += time.Duration(w.rnd.ExpFloat64() * mean)
			t = at
		default:
			// Stratified: one arrival at random within each of Count equal
			// slots, so a flash crowd of N "within T" is exactly that.
			slot := float64(j.Over.D()) / float64(j.Count)
			t = at + time.Duration((float64(k)+w.rnd.Float64())*slot)
		}
		w.schedule(t, w.pickClass(), false)
	}
}

// schedule creates a node that joins at t.
func (w *world) schedule(t time.Duration, class int, seed bool) {
	id := len(w.nodes)
	cl := w.sc.Classes[class]
	n := &node{
		id: int32(id), key: w.keyOf(id), class: class, region: cl.Region,
		up: cl.Up.f(), down: cl.Down.f(), lat: cl.Latency.D(), upload: !cl.NoUpload, nat: cl.NAT,
		isSeed: seed, joinAt: t, doneAt: -1, leftAt: -1,
	}
	n.seed = policy.PeerSeed(n.key)
	w.nodes = append(w.nodes, n)
	if !seed {
		w.leechers++
	}
	w.pendingJoins++
	w.q.push(event{at: t, kind: evJoin, n: int32(id)})
}

// join brings n into the swarm.
func (w *world) join(n *node) {
	w.pendingJoins--
	n.alive = true
	n.aliveAt = len(w.alive)
	w.alive = append(w.alive, n)
	n.have = newBitset(w.chunks)
	n.rnd = rand.New(rand.NewPCG(w.sc.Seed, uint64(n.id)+1))
	for _, c := range w.cutRegions() {
		if n.region == c {
			n.cutOff = true
		}
	}
	if n.isSeed {
		for i := range w.chunks {
			n.have.set(i)
			w.copies[i]++
		}
		n.nHave = w.chunks
		n.doneAt = w.now
	} else {
		w.newPicker(n)
	}
	n.choker = policy.NewChoker(policy.ChokerConfig{Slots: w.sc.Swarm.Slots, Rand: n.rnd})
	if w.p2p {
		w.announce(n)
	}
	phase := time.Duration(n.rnd.Int64N(int64(w.sc.Swarm.Tick.D())))
	w.q.push(event{at: w.now + phase, kind: evTick, n: n.id})
	if n.play != nil {
		w.advancePlay(n)
	}
}

// newPicker gives a leecher the picker the swarm session would: same
// defaults, the scenario's grace and order; for media, the segments outside
// what it will watch count as held so it never fetches them.
func (w *world) newPicker(n *node) {
	grace := w.sc.Swarm.Grace.D()
	if !w.p2p {
		grace = time.Nanosecond // a plain CDN client does not wait for a swarm
	}
	var skip, want *policy.Bitset
	if w.sc.Kind != KindFile {
		seg := w.sc.Media.Segment.D()
		s0, end := 0, w.chunks
		if w.sc.Kind == KindLive {
			s0 = max(0, w.edge-w.sc.Media.Delay)
		}
		if m := w.sc.Media.Watch.D(); m > 0 || w.sc.Leave.Churn > 0 {
			if w.sc.Leave.Churn > 0 {
				m = time.Duration(float64(time.Hour) / w.sc.Leave.Churn)
			}
			watch := time.Duration(n.rnd.ExpFloat64() * float64(m))
			end = min(w.chunks, s0+1+int(watch/seg))
		}
		n.play = w.newPlayback(s0, end)
		skip = policy.NewBitset(w.chunks)
		n.want = newBitset(w.chunks)
		for i := range w.chunks {
			if i < s0 || i >= end {
				skip.Set(i)
			} else if w.sc.Kind == KindLive {
				n.want.set(i) // every published segment of the window
			}
		}
		if w.sc.Kind == KindVOD {
			want = policy.NewBitset(w.chunks) // what the player asks for, as it asks
		}
	}
	n.picker = policy.NewPicker(policy.PickerConfig{
		Chunks: w.chunks, ChunkSize: w.chunkSize, Have: skip, Want: want, Rand: n.rnd, Self: n.seed,
		Start: w.t(), Grace: grace, AssumedRate: policy.DefaultAssumedRate, Order: w.order,
	})
	n.picker.SetEdge(w.edge)
	n.done = n.picker.Done()
	n.lane = policy.NewOriginLane()
	if w.p2p && !w.sc.Origin.Off {
		n.ahead = make([]uint8, w.chunks)
	}
}

// cutRegions lists the regions currently cut off.
func (w *world) cutRegions() []string {
	var out []string
	for _, e := range w.sc.Events {
		if e.At.D() > w.now {
			continue
		}
		switch e.Action {
		case "cut":
			out = append(out, e.Region)
		case "heal":
			for k, r := range out {
				if r == e.Region {
					out = append(out[:k], out[k+1:]...)
					break
				}
			}
		}
	}
	return out
}

func (w *world) scenarioEvent(e Event) {
	switch e.Action {
	case "seeds-leave":
		for _, n := range w.nodes {
			if n.isSeed {
				w.leave(n)
			}
		}
	case "cut":
		for _, n := range w.alive {
			if n.region != e.Region {
				continue
			}
			n.cutOff = true
			for k := len(n.conns) - 1; k >= 0; k-- {
				if c := n.conns[k]; c.other.region != e.Region {
					w.disconnect(c)
				}
			}
			for k := len(n.downFlows) - 1; k >= 0; k-- {
				if f := n.downFlows[k]; f.from == nil {
					w.endFlow(f)
					n.originActive--
					n.picker.Failed(int(f.chunk), policy.Origin)
					if n.play != nil {
						delete(n.play.originNow, int(f.chunk))
					}
				}
			}
		}
	case "heal":
		for _, n := range w.alive {
			if n.region == e.Region {
				n.cutOff = false
				n.lastAnnounce = -policy.AnnounceInterval // re-announce at the next tick
			}
		}
	}
}

// sample appends one time-series row.
func (w *world) sample() {
	if w.hooks != nil && w.hooks.sample != nil {
		w.hooks.sample(w)
	}
	dt := w.sc.Sample.D().Seconds()
	if len(w.series) > 0 {
		dt = (w.now - w.series[len(w.series)-1].T).Seconds()
	}
	if dt <= 0 {
		dt = math.SmallestNonzeroFloat64
	}
	w.creditActive()
	lo, hi := 0, w.edge
	if w.sc.Kind == KindLive {
		lo = max(0, hi-int(30*time.Second/w.sc.Media.Segment.D()))
	}
	minCopies, rare := int32(-1), 0
	for i := lo; i < hi; i++ {
		c := w.copies[i]
		if minCopies < 0 || c < minCopies {
			minCopies = c
		}
		if c <= 1 {
			rare++
		}
	}
	w.series = append(w.series, Sample{
		T:          w.now,
		OriginMbps: w.sampleOrigin * 8 / 1e6 / dt,
		PeerMbps:   w.samplePeers * 8 / 1e6 / dt,
		Peers:      len(w.alive),
		Complete:   w.completed,
		MinCopies:  int(max(minCopies, 0)),
		Rare:       rare,
	})
	w.sampleOrigin, w.samplePeers = 0, 0
}

// size is chunk i's length: the last chunk is shorter.
func (w *world) size(i int) int64 {
	return min(w.chunkSize, w.total-int64(i)*w.chunkSize)
}
