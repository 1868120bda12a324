package sim

import (
	"time"

	"github.com/shoal-cdn/shoal/swarm/policy"
)

func (w *world) t() time.Time { return epoch.Add(w.now) }

// tick is a node's control loop, as swarm.Session.tick: playback and
// deadlines, choking, top-ups, the origin lane, and re-announcing when
// short of neighbours.
func (w *world) tick(n *node) {
	if !n.alive {
		return
	}
	if n.play != nil {
		w.advancePlay(n)
	}
	if w.p2p {
		// The choker only changes its mind at its own rounds
		// (Choker.NextRound), or to refill a slot whose peer left or lost
		// interest: calling it at other ticks is a no-op, so the simulator
		// skips those calls (chokeNeeded says exactly when one is not).
		if n.chokeDirty || w.now >= n.chokeAt {
			n.chokeDirty = false
			if w.chokeNeeded(n) {
				w.rechoke(n)
			}
		}
		for _, c := range n.servers {
			// A connection with requests in flight tops up when they
			// complete; the tick only restarts idle ones (new HAVEs).
			if c.active == nil && len(c.queue) == 0 {
				w.topUp(n, c)
			}
		}
		if len(n.conns) < w.sc.Swarm.Neighbours/2 && w.now-n.lastAnnounce >= policy.AnnounceInterval {
			w.announce(n)
		}
	}
	w.originLane(n)
	w.q.push(event{at: w.now + w.sc.Swarm.Tick.D(), kind: evTick, n: n.id})
}

// interested reports whether c.other wants something c.self has.
func interested(c *conn) bool { return !c.otherDone && c.offer > 0 }

// chokeNeeded reports whether n's choker could answer differently from its
// last Tick: a round is due (Choker.NextRound), n started or stopped
// seeding, a neighbour left, a peer it unchokes lost interest, or a slot is
// free and a choked peer is interested, or the sprint's leader
// (policy.PlanSprint) is choked and interested. Otherwise Tick would return the same
// peers (at most re-shuffling candidates that are all unchoked already), so
// the call is skipped.
func (w *world) chokeNeeded(n *node) bool {
	if !n.upload || n.up <= 0 {
		return false // never unchokes anyone: every peer stays choked
	}
	if n.chokeGone || w.now >= n.chokeAt || n.complete() != n.chokeSeeding {
		return true
	}
	unchoked := 0
	for _, c := range n.conns {
		if !c.amChoking {
			unchoked++
			if !interested(c) {
				return true
			}
		}
	}
	if w.sc.Swarm.OriginAssist != 0 {
		// An interested sprint leader takes a slot at once (Choker.Tick).
		if sp := w.sprint(n); sp.On && !sp.Lead {
			for _, c := range n.conns {
				if c.amChoking && interested(c) && !c.other.isSeed && c.other.seed == sp.Leader {
					return true
				}
			}
		}
	}
	if unchoked > w.sc.Swarm.Slots {
		return false // every slot, optimistic included, is held
	}
	for _, c := range n.conns {
		if c.amChoking && interested(c) {
			return true
		}
	}
	return false
}

// rechoke asks n's choker whom to unchoke, as swarm.Session.rechokeLocked.
func (w *world) rechoke(n *node) {
	if !n.upload || n.up <= 0 {
		return // never unchokes anyone: every peer stays choked
	}
	now := w.t()
	seeding := n.complete()
	sp := w.sprint(n)
	states := w.states[:0]
	for _, c := range n.conns {
		st := policy.PeerState{Key: c.otherKey, Interested: interested(c)}
		st.Sprint = sp.On && !sp.Lead && !c.other.isSeed && c.other.seed == sp.Leader
		// The choker ranks by DownRate, and only interested peers while
		// leeching; it never reads UpRate. Measuring just those saves two
		// exponentials per neighbour per call.
		if st.Interested && !seeding {
			st.DownRate = c.down.At(now)
		}
		states = append(states, st)
	}
	w.states = states
	unchoke := n.choker.Tick(now, seeding, states)
	n.unchoked = len(unchoke)
	n.chokeGone, n.chokeSeeding = false, seeding
	n.chokeAt = n.choker.NextRound().Sub(epoch)
	picked := w.picked[:0]
	for _, k := range unchoke {
		picked = append(picked, w.nodeOf(k))
	}
	w.picked = picked
	for _, c := range n.conns {
		want := false
		for _, o := range picked {
			if o == c.other {
				want = true
				break
			}
		}
		switch {
		case want && c.amChoking:
			c.amChoking = false
			c.other.addServer(c.back)
			w.topUp(c.other, c.back)
		case !want && !c.amChoking:
			c.amChoking = true
			c.other.dropServer(c.back)
			// Drop what other asked of us and we have not started sending,
			// as the session's dropServes; other's picker frees them.
			b := c.back
			if op := c.other.picker; op != nil {
				for _, r := range b.queue {
					op.Failed(int(r.chunk), n.key)
				}
			}
			b.queue = b.queue[:0]
		}
	}
}

// topUp keeps n's requests to c.other sized to the measured rate, as
// swarm.Session.topUpLocked.
func (w *world) topUp(n *node, c *conn) {
	if c.closed || !c.unchokedBy || n.complete() || !n.alive || c.back.offer == 0 || !n.wantsFrom(c.other) {
		return
	}
	now := w.t()
	rate := c.down.At(now)
	inFlight := len(c.queue)
	if c.active != nil {
		inFlight++
	}
	k := policy.RequestDepth(rate, w.chunkSize) - inFlight
	if k <= 0 {
		return
	}
	ready := w.now + n.lat + c.other.lat
	for _, i := range n.picker.Next(now, policy.Source{Key: c.otherKey, Has: c.other.have, Rate: rate}, k) {
		n.picker.Requested(i, c.otherKey, now)
		c.queue = append(c.queue, req{chunk: int32(i), ready: ready})
	}
	w.kick(c)
}

// kick starts c's next queued chunk when nothing is being sent on it.
func (w *world) kick(c *conn) {
	if c.active != nil || len(c.queue) == 0 || c.closed {
		return
	}
	r := c.queue[0]
	if r.ready > w.now {
		if !c.startQueued || c.startAt > r.ready {
			c.startQueued, c.startAt = true, r.ready
			w.q.push(event{at: r.ready, kind: evConnStart, c: c, ver: c.ver})
		}
		return
	}
	c.queue = c.queue[1:]
	f := &flow{from: c.other, to: c.self, c: c, chunk: r.chunk, size: float64(w.size(int(r.chunk)))}
	c.active = f
	w.startFlow(f)
}

// originLane starts origin fetches as swarm's originLaneLocked: what
// policy.OriginLane picks among OriginFallback's candidates, with the
// node's incrementally kept Ahead counts. A class without origin access
// (no_origin) never fetches, but its neighbours still rank it, as real peers
// cannot tell.
func (w *world) originLane(n *node) {
	if w.sc.Origin.Off || n.cutOff || n.complete() || w.sc.Classes[n.class].NoOrigin {
		return
	}
	free := w.sc.Origin.Parallel - n.originActive
	if free <= 0 {
		return
	}
	now := w.t()
	start := func(i int) bool {
		w.startOrigin(n, i)
		return true
	}
	free = n.lane.Plan(now, n.picker, free, policy.LaneInputs{
		Ahead: func(i int) int {
			if n.ahead == nil {
				return 0
			}
			return int(n.ahead[i])
		},
		Start: start,
	})
	// Origin assist, as swarm's originAssistLocked: the same pick, within
	// the same share of the budget (policy.PlanSprint).
	if w.sc.Swarm.OriginAssist != 0 {
		sp := w.sprint(n)
		for free = sp.AssistSlots(free, n.originActive); free > 0; free-- {
			i := n.picker.AssistPick(now, n.seed, nil)
			if i < 0 || sp.Budget > 0 && n.assisted+w.size(i) > sp.Budget {
				return
			}
			start(i)
			n.assisted += w.size(i)
		}
	}
}

// sprint is policy.PlanSprint for n, as swarm's sprintLocked: over its
// neighbours that fetch the whole content (file peers, not seeds).
func (w *world) sprint(n *node) policy.Sprint {
	if w.sc.Swarm.OriginAssist == 0 || w.sc.Kind != KindFile {
		return policy.Sprint{Leader: n.seed, Lead: true}
	}
	return policy.PlanSprint(policy.SprintInputs{
		Self:   n.seed,
		Budget: policy.AssistBudget(w.sc.Swarm.OriginAssist, w.total),
		Size:   w.total,
		Peers: func(yield func(policy.SprintPeer) bool) {
			for _, c := range n.conns {
				if o := c.other; !o.isSeed && !yield(policy.SprintPeer{Seed: o.seed, Done: o.complete()}) {
					return
				}
			}
		},
	})
}

// startOrigin starts n's origin fetch of chunk i.
func (w *world) startOrigin(n *node, i int) {
	n.picker.Requested(i, policy.Origin, w.t())
	n.originActive++
	if n.play != nil {
		n.play.originNow[i] = true
	}
	if w.hooks != nil && w.hooks.originStart != nil {
		w.hooks.originStart(w, n, i)
	}
	f := &flow{to: n, chunk: int32(i), size: float64(w.size(i)), began: w.now}
	w.q.push(event{at: w.now + n.lat + w.sc.Origin.Latency.D(), kind: evOriginStart, f: f})
}

// flowDone handles a finished transfer.
func (w *world) flowDone(f *flow) {
	w.endFlow(f)
	d := f.to
	size := int64(f.size)
	if f.from == nil {
		w.originBytes += size
		w.credit(f, f.size)
		d.originActive--
		if !d.alive {
			return
		}
		if d.lane != nil {
			d.lane.Observe(w.now - f.began)
		}
		if !d.have.Has(int(f.chunk)) {
			d.fromOrigin += size
			w.deliver(d, int(f.chunk), policy.Origin)
		}
		w.originLane(d)
		return
	}
	u, c := f.from, f.c
	c.active = nil
	u.uploaded += size
	w.peerBytes += size
	w.credit(f, f.size)
	c.down.Add(w.t(), size)
	if !d.have.Has(int(f.chunk)) {
		d.fromPeers += size
		w.deliver(d, int(f.chunk), u.key)
	}
	w.kick(c)
	w.topUp(d, c)
}

// deliver records chunk i at n from src, as swarm's receivedLocked:
// cancel duplicates, tell every neighbour (HAVE), advance playback.
func (w *world) deliver(n *node, i int, src policy.PeerKey) {
	if n.picker != nil {
		for _, k := range n.picker.Received(i, src, w.t()) {
			if k == policy.Origin {
				continue // an origin fetch in flight just finishes
			}
			for _, c := range n.conns {
				if c.otherKey != k {
					continue
				}
				if c.active != nil && int(c.active.chunk) == i {
					w.endFlow(c.active)
					c.active = nil
					w.kick(c)
				}
				for q, r := range c.queue {
					if int(r.chunk) == i {
						c.queue = append(c.queue[:q], c.queue[q+1:]...)
						break
					}
				}
			}
		}
	}
	n.have.set(i)
	n.nHave++
	if n.lane != nil {
		n.lane.Forget(i)
	}
	if w.hooks != nil && w.hooks.deliver != nil {
		w.hooks.deliver(n, i)
	}
	w.copies[i]++
	free := n.unchoked <= w.sc.Swarm.Slots
	for _, c := range n.conns {
		o := c.other
		if !c.otherDone {
			o.picker.Availability().AddHave(i)
		}
		if o.have.Has(i) {
			c.back.offer--
		} else {
			c.offer++
			// The choker fills free slots at every tick, and gives an
			// interested sprint leader one: a choked neighbour lacking i
			// may just have become interested, so give n that tick.
			if (free || w.sc.Swarm.OriginAssist != 0) && c.amChoking {
				n.chokeDirty = true
			}
		}
		// A peer that unchokes n and has nothing more for it has a slot to
		// refill.
		if c.unchokedBy && c.back.offer == 0 {
			o.chokeDirty = true
		}
	}
	if n.play != nil {
		w.arrived(n, i)
	}
	if n.picker != nil && n.picker.Done() && n.doneAt < 0 {
		n.done = true
		n.doneAt = w.now
		w.completed++
		n.chokeDirty = true // from leeching to seeding
		for _, c := range n.conns {
			c.back.otherDone = true
		}
		if w.sc.Kind == KindFile {
			n.picker = nil // a seed needs no picker; frees its memory
			n.ahead, n.lane = nil, nil
			if a := w.sc.Leave.AfterComplete; a != nil && *a >= 0 {
				w.q.push(event{at: w.now + a.D(), kind: evLeave, n: n.id})
			}
		}
	}
}
