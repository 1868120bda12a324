// Package sim is Shoal's deterministic discrete-event swarm simulator
// (`shoal sim`). It drives the swarm's own policy — policy.Picker (rarest
// first, deadline lane, end-game, origin fallback), policy.Choker,
// policy.Rate, policy.RequestDepth, the origin lane (policy.OriginLane:
// designation and takeover), the control loop's defaults
// (swarm/policy/control.go) and the gateway's playback rules for its media
// viewers (swarm/policy/playback.go) — imported from the package the peers run, over a
// flow-level network model: per-peer upload and download capacity shared
// equally among a node's active transfers, per-link latency, an origin with
// finite egress. One goroutine, a virtual clock and seeded randomness: the
// same scenario and seed give byte-identical output.
//
// Only cmd/shoal imports this package.
package sim

import (
	"math"
	"time"
)

// epoch is virtual time zero, handed to the policy code as a time.Time.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type evKind uint8

const (
	evFlowDone evKind = iota
	evConnStart
	evOriginStart
	evTick
	evJoin
	evLeave
	evProduce
	evScenario
	evSample
	evOriginEpoch
	evPlayer // a media viewer's player may ask for its next segment
	evLate   // an on-demand request's late time (policy.Step.LateAt)
	evDue    // a live request's due time (policy.LiveRequest)
)

// event is one entry of the queue. Stale entries (a flow whose rate changed
// since, a connection closed) are skipped when popped: ver must match.
type event struct {
	at   time.Duration
	seq  uint64
	kind evKind
	ver  uint32
	n    int32 // node, or scenario event index
	seg  int32 // evLate, evDue: the segment
	f    *flow
	c    *conn
}

// queue is a binary min-heap on (at, seq): seq makes equal times pop in
// insertion order, which keeps runs deterministic.
type queue struct {
	h   []event
	seq uint64
}

func (q *queue) less(i, j int) bool {
	a, b := &q.h[i], &q.h[j]
	return a.at < b.at || a.at == b.at && a.seq < b.seq
}

func (q *queue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *queue) pop() event {
	e := q.h[0]
	last := len(q.h) - 1
	q.h[0] = q.h[last]
	q.h[last] = event{}
	q.h = q.h[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q.h) && q.less(l, m) {
			m = l
		}
		if r < len(q.h) && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return e
}

// flow is one chunk in transfer, from a node or the origin (from == nil).
type flow struct {
	from, to  *node
	c         *conn // the downloader's connection to from; nil for the origin
	chunk     int32
	size      float64
	remaining float64
	rate      float64
	began     time.Duration // origin flows: when the request was made
	last      time.Duration
	ver       uint32
	done      bool
	credited  float64 // bytes already counted in the time series
	upIdx     int     // index in from.upFlows (or the origin's flows)
	downIdx   int     // index in to.downFlows
}

// The network model: a flow's rate is the smaller of its sender's equal
// share (upload capacity / active uploads) and its receiver's (download
// capacity / active downloads), both in payload after the wire's cost
// (Scenario.Wire, a core.WireCost): a peer's upload carries h wire bytes
// per payload byte and the ACKs of what it downloads (a per wire byte
// received), the origin's h_o per payload byte, and a download carries
// the sender's h or h_o per payload byte. It is not max-min fair — capacity one flow
// cannot use is not handed to the others — which is pessimistic when a
// node's flows have different bottlenecks and exact when they share one.
// Rates are recomputed for the flows of both ends whenever a flow starts
// or ends there. The origin's share (capacity / origin flows) is
// recomputed every originEpoch instead, when it moved by more than 1%,
// because a CDN-only crowd keeps tens of thousands of origin flows open.
const originEpoch = 250 * time.Millisecond

func share(capacity float64, n int) float64 {
	if capacity <= 0 {
		return math.Inf(1)
	}
	return capacity / float64(max(n, 1))
}

func (w *world) upShare(f *flow) float64 {
	if f.from == nil {
		return w.originShare
	}
	return share(f.from.upPayload, len(f.from.upFlows))
}

// downShare is f's receiver's share of its download, in payload: the
// link carries f's wire bytes, h (or h_o from the origin) per payload byte.
func (w *world) downShare(f *flow) float64 {
	return share(f.to.down, len(f.to.downFlows)) / w.flowCost(f)
}

// flowCost is the wire bytes per payload byte of f.
func (w *world) flowCost(f *flow) float64 {
	if f.from == nil {
		return w.wire.Origin
	}
	return w.wire.Peer
}

// originCapacity is the origin's egress in payload (0: unlimited).
func (w *world) originCapacity() float64 { return w.sc.Origin.Capacity.f() / w.wire.Origin }

// setUpPayload brings n's upload capacity for payload up to date: its
// link less the ACKs of what it downloads now, a per wire byte received,
// over h. The ACKs follow the download rates of n's last reshare, not
// every change of them: a second-order term (a is under 1 %), and
// following them exactly would cascade a rate change through the swarm.
func (w *world) setUpPayload(n *node) {
	if n.up <= 0 {
		n.upPayload = 0 // unlimited
		return
	}
	ack := 0.0
	if w.wire.Ack > 0 {
		for _, f := range n.downFlows {
			if !math.IsInf(f.rate, 1) {
				ack += f.rate * w.flowCost(f)
			}
		}
		ack *= w.wire.Ack
	}
	n.upPayload = max(n.up-ack, n.up/2) / w.wire.Peer
}

// setRate brings f's progress up to now and reschedules its completion at
// its new rate.
func (w *world) setRate(f *flow) {
	if f.done {
		return
	}
	r := min(w.upShare(f), w.downShare(f))
	if f.rate > 0 {
		f.remaining -= f.rate * (w.now - f.last).Seconds()
		if f.remaining < 0 {
			f.remaining = 0
		}
	}
	f.last = w.now
	if r == f.rate && f.ver > 0 {
		return
	}
	f.rate = r
	f.ver++
	var d time.Duration
	if !math.IsInf(r, 1) {
		d = time.Duration(math.Ceil(f.remaining / r * float64(time.Second)))
	}
	w.q.push(event{at: w.now + d, kind: evFlowDone, f: f, ver: f.ver})
}

func (w *world) reshare(n *node) {
	w.setUpPayload(n)
	for _, f := range n.upFlows {
		w.setRate(f)
	}
	for _, f := range n.downFlows {
		w.setRate(f)
	}
}

// startFlow puts f on the wire now.
func (w *world) startFlow(f *flow) {
	f.last = w.now
	f.remaining = f.size
	if f.from == nil {
		f.upIdx = len(w.originFlows)
		w.originFlows = append(w.originFlows, f)
		// A new flow gets at most the current fair share; the others pick
		// it up at the next origin epoch.
		if s := share(w.originCapacity(), len(w.originFlows)); s < w.originShare || len(w.originFlows) == 1 {
			w.originShare = s
		}
		w.originDirty()
	} else {
		f.upIdx = len(f.from.upFlows)
		f.from.upFlows = append(f.from.upFlows, f)
	}
	f.downIdx = len(f.to.downFlows)
	f.to.downFlows = append(f.to.downFlows, f)
	if f.from != nil {
		w.reshare(f.from)
	}
	w.reshare(f.to)
	w.setRate(f)
}

// endFlow takes f off the wire (finished or aborted).
func (w *world) endFlow(f *flow) {
	if f.done {
		return
	}
	f.done = true
	if f.from == nil {
		w.originFlows = removeFlow(w.originFlows, f.upIdx, true)
		w.originDirty()
	} else {
		f.from.upFlows = removeFlow(f.from.upFlows, f.upIdx, true)
		w.reshare(f.from)
	}
	f.to.downFlows = removeFlow(f.to.downFlows, f.downIdx, false)
	w.reshare(f.to)
}

func removeFlow(s []*flow, i int, up bool) []*flow {
	last := len(s) - 1
	s[i] = s[last]
	if up {
		s[i].upIdx = i
	} else {
		s[i].downIdx = i
	}
	s[last] = nil
	return s[:last]
}

func (w *world) originDirty() {
	if !w.epochPending {
		w.epochPending = true
		w.q.push(event{at: w.now + originEpoch, kind: evOriginEpoch})
	}
}

func (w *world) originEpoch() {
	w.epochPending = false
	s := share(w.originCapacity(), len(w.originFlows))
	if w.originShare == w.originApplied && math.Abs(s-w.originApplied) <= 0.01*w.originApplied {
		return
	}
	w.originShare, w.originApplied = s, s
	for _, f := range w.originFlows {
		w.setRate(f)
	}
}

func (r Rate) f() float64 { return float64(r) }

// credit counts f's bytes moved so far into the current sample interval,
// so the time series shows traffic when it flows, not when chunks finish.
func (w *world) credit(f *flow, upTo float64) {
	d := upTo - f.credited
	if d <= 0 {
		return
	}
	f.credited = upTo
	if f.from == nil {
		w.sampleOrigin += d
	} else {
		w.samplePeers += d
	}
}

// creditActive credits every flow's progress up to now.
func (w *world) creditActive() {
	progress := func(f *flow) float64 {
		return f.size - max(0, f.remaining-f.rate*(w.now-f.last).Seconds())
	}
	for _, f := range w.originFlows {
		w.credit(f, progress(f))
	}
	for _, n := range w.alive {
		for _, f := range n.upFlows {
			w.credit(f, progress(f))
		}
	}
}
