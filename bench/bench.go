// Package bench measures Shoal end to end in one process: `shoal bench`
// runs it. RunSwarm publishes a content, serves it from a real origin with
// a capped upload on loopback, and lets a flash crowd of peers on an
// in-memory network, each with its own link caps and store, fetch it through
// the swarm engine; it reports completion times against the theoretical
// lower bound. Only cmd/shoal imports this package.
package bench

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// Defaults of `shoal bench swarm`: a flash crowd big enough that the origin
// alone would take N times longer than the swarm.
const (
	DefaultPeers    = 20
	DefaultSize     = 256 << 20
	DefaultOriginUp = 100e6 / 8 // 100 Mbit/s
	DefaultPeerUp   = 20e6 / 8  // 20 Mbit/s
	DefaultPeerDown = 100e6 / 8 // 100 Mbit/s
	DefaultProgress = 5 * time.Second
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("bench: bad config")

// SwarmConfig describes one swarm benchmark. Rates are bytes/s; 0 means
// unlimited.
type SwarmConfig struct {
	Peers     int   // N, at least 1
	Size      int64 // F, bytes of content (one file)
	ChunkSize int64 // 0: core.DefaultChunkSize
	OriginUp  float64
	PeerUp    float64
	PeerDown  float64 // d_i: caps what a peer receives from peers and the origin together
	Seed      uint64  // content, keys and peer randomness
	// JoinSpread spreads the peers' arrivals evenly over this long; 0 is a
	// flash crowd (everyone at once).
	JoinSpread time.Duration
	// OriginAssist lets every peer keep the origin busy with chunks it lacks
	// (swarm.Config.OriginAssist), trading origin egress for completion
	// time. Off: the origin serves about one copy.
	OriginAssist bool
	// Dir is where the origin layout and the peers' stores go (a fresh
	// temporary directory under it, removed afterwards); "" is os.TempDir.
	Dir string
	// Progress, if set, gets a line every ProgressEvery while peers run.
	Progress      func(Progress)
	ProgressEvery time.Duration // default DefaultProgress
	Logger        *slog.Logger
}

// Progress is a snapshot while the benchmark runs.
type Progress struct {
	Elapsed     time.Duration
	Joined      int
	Done        int
	Peers       int
	Held, Total int64 // content bytes held by all peers, out of N·F
	OriginBytes int64
	Rate        float64 // aggregate bytes/s received since the last snapshot
}

// PeerResult is one peer's outcome. Times count from the benchmark start.
type PeerResult struct {
	Name       string
	Joined     time.Duration
	Finished   time.Duration // 0 if it never completed
	Complete   bool
	FromPeers  int64
	FromOrigin int64
	Uploaded   int64
}

// SwarmResult is what RunSwarm measured.
type SwarmResult struct {
	Config      SwarmConfig  // with defaults filled in
	Peers       []PeerResult // by completion time, incomplete ones last
	Completed   int
	TLast       time.Duration // start to the last completion
	TStar       time.Duration // LowerBound for the configuration
	Efficiency  float64       // TStar / TLast
	OriginBytes int64         // origin egress (response body bytes)
	OriginRatio float64       // OriginBytes / F
	FromPeers   int64         // bytes received from peers, all peers
	FromOrigin  int64         // bytes received from the origin, all peers
	Wall        time.Duration // the whole run: generate, publish, swarm, teardown
}

func (c *SwarmConfig) fill() error {
	if c.Peers < 1 {
		return fmt.Errorf("%w: peers %d: want at least 1", ErrConfig, c.Peers)
	}
	if c.Size < 1 {
		return fmt.Errorf("%w: size %d: want at least 1 byte", ErrConfig, c.Size)
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = core.DefaultChunkSize
	}
	if c.OriginUp < 0 || c.PeerUp < 0 || c.PeerDown < 0 || c.JoinSpread < 0 {
		return fmt.Errorf("%w: rates and join spread must not be negative", ErrConfig)
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = DefaultProgress
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
