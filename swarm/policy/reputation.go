package policy

import (
	"container/list"
	"math"
	"time"
)

// Reputation defaults and weights. A score is a number of points that decays
// towards zero with DefaultHalfLife: good service is worth keeping only if it
// is recent, and so is misbehaviour short of a ban.
const (
	// DefaultHalfLife is how long it takes a score to halve: after 30
	// minutes a peer's history counts half, after a few hours almost
	// nothing.
	DefaultHalfLife = 30 * time.Minute
	// DefaultReputationPeers bounds the peers a Reputation remembers; the
	// least recently scored one is forgotten first.
	DefaultReputationPeers = 4096

	// DeliveryUnit is the bytes of verified chunks worth one point.
	DeliveryUnit = 1 << 20
	// ScoreCap bounds a score from above, so a peer cannot bank enough
	// credit from past deliveries to absorb a run of misbehaviour.
	ScoreCap = 50.0
	// ScoreFloor bounds a score from below, so a peer can recover (by
	// decay) within a few half-lives.
	ScoreFloor = -200.0
	// TimeoutPenalty is charged for a request not answered in time.
	TimeoutPenalty = 2.0
	// RefusedPenalty is charged for a request the peer refused (REJECT):
	// cheap, since a busy or choking peer refuses honestly.
	RefusedPenalty = 0.5
	// ViolationPenalty is charged for a protocol violation (the connection
	// is closed too).
	ViolationPenalty = 20.0
	// BadChunkPenalty is charged for a chunk that failed verification:
	// proof of a lie, so the peer is banned as well.
	BadChunkPenalty = 100.0
	// DistrustScore: a peer scoring below it is distrusted. It gets no
	// optimistic unchoke, and the picker leaves chunks that a trusted peer
	// also holds to that peer (Source.Better). About one violation, or
	// three timeouts, within the last half-life.
	DistrustScore = -5.0
)

// Outcome is something a peer did that changes its score.
type Outcome int

// The outcomes a Reputation is fed.
const (
	Delivered Outcome = iota // verified bytes (Record's bytes argument)
	TimedOut                 // a request not answered in time
	Refused                  // a request answered with REJECT
	Violated                 // a protocol violation
	BadChunk                 // a chunk that failed verification
)

// ReputationConfig configures a Reputation. Zero fields take the defaults.
type ReputationConfig struct {
	// HalfLife is how long a score takes to halve. Default DefaultHalfLife.
	HalfLife time.Duration
	// MaxPeers bounds the peers remembered. Default DefaultReputationPeers.
	MaxPeers int
}

// Reputation keeps a decaying score per peer: verified deliveries raise it
// (one point per DeliveryUnit bytes), timeouts, refusals, violations and bad
// chunks lower it, and every score halves each HalfLife towards zero. Memory
// is bounded: past MaxPeers the least recently scored peer is forgotten (it
// comes back at zero, which is where a stranger starts).
//
// Scores are what the choker (PeerState.Score) and the picker
// (Source.Better) break ties with; bans are decided by the caller.
type Reputation struct {
	cfg   ReputationConfig
	lru   *list.List // of *repEntry, least recently touched at the front
	peers map[PeerKey]*list.Element
}

type repEntry struct {
	key   PeerKey
	score float64   // as of at
	at    time.Time // when score was last brought up to date
}

// NewReputation returns an empty Reputation.
func NewReputation(cfg ReputationConfig) *Reputation {
	if cfg.HalfLife <= 0 {
		cfg.HalfLife = DefaultHalfLife
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = DefaultReputationPeers
	}
	return &Reputation{cfg: cfg, lru: list.New(), peers: map[PeerKey]*list.Element{}}
}

// Len is the number of peers remembered.
func (r *Reputation) Len() int { return r.lru.Len() }

// decayed is e's score at now.
func (r *Reputation) decayed(e *repEntry, now time.Time) float64 {
	dt := now.Sub(e.at)
	if dt <= 0 {
		return e.score
	}
	return e.score * math.Exp2(-dt.Seconds()/r.cfg.HalfLife.Seconds())
}

// Score is k's score at now; 0 for a peer not remembered.
func (r *Reputation) Score(k PeerKey, now time.Time) float64 {
	el := r.peers[k]
	if el == nil {
		return 0
	}
	return r.decayed(el.Value.(*repEntry), now)
}

// Distrusted reports whether k scores below DistrustScore at now.
func (r *Reputation) Distrusted(k PeerKey, now time.Time) bool {
	return r.Score(k, now) < DistrustScore
}

// Record applies an outcome to k's score at now. bytes counts only for
// Delivered. It returns the new score.
func (r *Reputation) Record(k PeerKey, o Outcome, bytes int64, now time.Time) float64 {
	var delta float64
	switch o {
	case Delivered:
		if bytes <= 0 {
			return r.Score(k, now)
		}
		delta = float64(bytes) / DeliveryUnit
	case TimedOut:
		delta = -TimeoutPenalty
	case Refused:
		delta = -RefusedPenalty
	case Violated:
		delta = -ViolationPenalty
	case BadChunk:
		delta = -BadChunkPenalty
	default:
		return r.Score(k, now)
	}
	var e *repEntry
	if el := r.peers[k]; el != nil {
		e = el.Value.(*repEntry)
		e.score = r.decayed(e, now)
		r.lru.MoveToBack(el)
	} else {
		for r.lru.Len() >= r.cfg.MaxPeers {
			old := r.lru.Remove(r.lru.Front()).(*repEntry)
			delete(r.peers, old.key)
		}
		e = &repEntry{key: k}
		r.peers[k] = r.lru.PushBack(e)
	}
	if now.After(e.at) {
		e.at = now
	}
	e.score = min(max(e.score+delta, ScoreFloor), ScoreCap)
	return e.score
}

// Forget drops what is known about k.
func (r *Reputation) Forget(k PeerKey) {
	if el := r.peers[k]; el != nil {
		r.lru.Remove(el)
		delete(r.peers, k)
	}
}
