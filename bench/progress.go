package bench

import (
	"time"

	"github.com/shoal-cdn/shoal/origin"
)

// progressMeter turns the sessions' counters into Progress snapshots.
// Only the benchmark's main goroutine uses it.
type progressMeter struct {
	cfg   SwarmConfig
	peers []*benchPeer
	srv   *origin.Server
	start time.Time

	lastAt    time.Time
	lastBytes int64
}

func newProgressMeter(cfg SwarmConfig, peers []*benchPeer, srv *origin.Server, start time.Time) *progressMeter {
	return &progressMeter{cfg: cfg, peers: peers, srv: srv, start: start, lastAt: start}
}

func (m *progressMeter) snapshot() Progress {
	now := time.Now()
	pr := Progress{
		Elapsed: now.Sub(m.start), Peers: len(m.peers),
		Total: int64(len(m.peers)) * m.cfg.Size, OriginBytes: m.srv.BytesServed(),
	}
	var received int64
	for _, p := range m.peers {
		st := p.sess.Stats()
		// Chunks are ChunkSize except the last: close enough for progress.
		pr.Held += min(int64(st.Have)*m.cfg.ChunkSize, m.cfg.Size)
		received += st.BytesFromPeers + st.BytesFromOrigin
		p.mu.Lock()
		if p.joined {
			pr.Joined++
		}
		if p.complete {
			pr.Done++
		}
		p.mu.Unlock()
	}
	if dt := now.Sub(m.lastAt).Seconds(); dt > 0 {
		pr.Rate = float64(received-m.lastBytes) / dt
	}
	m.lastAt, m.lastBytes = now, received
	return pr
}
