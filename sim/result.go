package sim

import (
	"slices"
	"time"
)

// Sample is one row of the time series.
type Sample struct {
	T          time.Duration
	OriginMbps float64 // origin egress over the last interval
	PeerMbps   float64 // peer-to-peer traffic over the last interval
	Peers      int     // peers in the swarm (seeds included)
	Complete   int     // leechers complete so far
	MinCopies  int     // fewest peers holding any published chunk (live: of the last 30 s)
	Rare       int     // published chunks held by at most one peer
}

// PeerResult is one leecher's outcome.
type PeerResult struct {
	ID                int
	Class, Region     string
	Join              time.Duration
	Done              time.Duration // completion time after joining; -1 if never
	FromOrigin        int64
	FromPeers         int64
	Uploaded          int64
	Started           bool          // media: playback started
	Startup           time.Duration // media: join to playback start
	Rebuffer, Watched time.Duration // media
}

// Result is one run's outcome.
type Result struct {
	Scenario    string
	Kind        string
	P2P         bool
	Chunks      int
	ChunkSize   int64
	SimTime     time.Duration // virtual time simulated
	Events      int64
	OriginBytes int64 // origin egress, duplicates included
	PeerBytes   int64 // bytes carried peer to peer, duplicates included
	Peers       []PeerResult
	Series      []Sample
}

// Offload is the share of delivered bytes that did not come from the
// origin: 1 − origin egress / (origin egress + peer traffic).
func (r *Result) Offload() float64 {
	t := r.OriginBytes + r.PeerBytes
	if t == 0 {
		return 0
	}
	return 1 - float64(r.OriginBytes)/float64(t)
}

// Completion returns the sorted completion times of the peers that
// completed, and how many did not.
func (r *Result) Completion() (done []time.Duration, incomplete int) {
	for _, p := range r.Peers {
		if p.Done >= 0 {
			done = append(done, p.Done)
		} else {
			incomplete++
		}
	}
	slices.Sort(done)
	return done, incomplete
}

// QoE sums up the viewers: start-up percentiles over those who started,
// rebuffering per hour watched, and how many never started.
func (r *Result) QoE() (p50, p95 time.Duration, rebufPerHour time.Duration, neverStarted int) {
	var startups []time.Duration
	var rebuf, watched time.Duration
	for _, p := range r.Peers {
		if !p.Started {
			neverStarted++
			continue
		}
		startups = append(startups, p.Startup)
		rebuf += p.Rebuffer
		watched += p.Watched
	}
	slices.Sort(startups)
	p50, p95 = Percentile(startups, 0.5), Percentile(startups, 0.95)
	if watched > 0 {
		rebufPerHour = time.Duration(float64(rebuf) / watched.Hours())
	}
	return p50, p95, rebufPerHour, neverStarted
}

// Percentile of sorted durations (nearest rank); 0 for none.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

func (w *world) result() *Result {
	r := &Result{
		Scenario: w.sc.Name, Kind: w.sc.Kind, P2P: w.p2p, Chunks: w.chunks, ChunkSize: w.chunkSize,
		SimTime: w.now, Events: w.events, OriginBytes: w.originBytes, PeerBytes: w.peerBytes,
		Series: w.series,
	}
	for _, n := range w.nodes {
		if n.isSeed || n.joinAt > w.now {
			continue
		}
		cl := w.sc.Classes[n.class]
		pr := PeerResult{
			ID: int(n.id), Class: cl.Name, Region: n.region, Join: n.joinAt, Done: -1,
			FromOrigin: n.fromOrigin, FromPeers: n.fromPeers, Uploaded: n.uploaded,
		}
		if n.doneAt >= 0 {
			pr.Done = n.doneAt - n.joinAt
		}
		if p := n.play; p != nil {
			if n.alive {
				w.advancePlay(n)
				p.stop(w.now)
			}
			pr.Started, pr.Rebuffer, pr.Watched = p.started, p.rebuffer, p.watched
			if p.started {
				pr.Startup = p.startAt - p.joined
			}
		}
		r.Peers = append(r.Peers, pr)
	}
	return r
}
