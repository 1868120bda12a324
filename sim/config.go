package sim

import (
	"errors"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// ErrScenario is wrapped by every scenario error.
var ErrScenario = errors.New("sim: bad scenario")

// Kinds of scenario.
const (
	KindFile = "file" // download a file; measure completion times
	KindVOD  = "vod"  // watch a video from the start; measure QoE
	KindLive = "live" // watch a live event near its edge; measure QoE
)

// Scenario is one simulation, as read from YAML. Sizes take core.ParseSize
// syntax ("1GiB"), rates core.ParseRate ("20Mbit"), durations
// time.ParseDuration ("90s").
type Scenario struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Seed        uint64 `yaml:"seed"`
	Kind        string `yaml:"kind"`
	// Duration is when the simulation stops at the latest (a live event's
	// length). A file scenario also stops once every peer is complete.
	Duration Dur     `yaml:"duration"`
	Content  Content `yaml:"content"`
	Origin   Origin  `yaml:"origin"`
	Swarm    Swarm   `yaml:"swarm"`
	// Wire is what the links carry beyond the payload (default: what
	// `shoal bench netbed` measured, core.MeasuredWire).
	Wire    Wire    `yaml:"wire"`
	Media   Media   `yaml:"media"`
	Classes []Class `yaml:"classes"`
	// Seeds are peers holding the whole content from t=0.
	Seeds  Seeds   `yaml:"seeds"`
	Joins  Joins   `yaml:"joins"`
	Leave  Leave   `yaml:"leave"`
	Events []Event `yaml:"events"`
	// Sample is the time-series interval. Default 10s.
	Sample Dur `yaml:"sample"`
}

// Content is what the swarm shares: a file of Size bytes in chunks of
// Chunk bytes. For media, Size is Bitrate × Duration when unset and a
// chunk is one segment (Bitrate × Segment bytes).
type Content struct {
	Size  Size `yaml:"size"`
	Chunk Size `yaml:"chunk"`
}

// Origin is the HTTP origin/CDN.
type Origin struct {
	// Capacity is the origin's egress, bytes/s; 0 = unlimited.
	Capacity Rate `yaml:"capacity"`
	// Off: there is no origin (peers and seeds only).
	Off     bool `yaml:"off"`
	Latency Dur  `yaml:"latency"` // one-way; default 20ms
	// Parallel bounds a peer's origin requests in flight (default
	// policy.DefaultOriginParallel, the session's).
	Parallel int `yaml:"parallel"`
}

// Swarm is the engine's tuning; its defaults are the session's
// (swarm/policy/control.go), except Tick.
type Swarm struct {
	// P2P off runs the CDN-only baseline: every byte from the origin.
	P2P *bool `yaml:"p2p"`
	// Neighbours is how many peers an announce returns (default 40).
	Neighbours int `yaml:"neighbours"`
	// MaxPeers caps a peer's connections (default policy.DefaultMaxPeers,
	// the session's).
	MaxPeers int `yaml:"max_peers"`
	// Tick is the control-loop period (default 1s; the session's is
	// policy.DefaultTick, 100ms — coarser here for speed: the choker works in
	// 10 s rounds anyway, and completions top up at once without a tick).
	Tick Dur `yaml:"tick"`
	// Grace before chunks nobody has go to the origin (default
	// policy.DefaultGrace, the session's).
	Grace Dur `yaml:"grace"`
	// Slots is the choker's regular unchoke slots (default 4).
	Slots int `yaml:"slots"`
	// Order is the picker's background order: rarest (default) or
	// sequential.
	Order string `yaml:"order"`
	// OriginAssist makes every peer spend origin capacity beyond its
	// designated share, as `shoal get --origin-assist` does: a fraction of
	// the content per peer (policy.AssistBudget), negative for no cap, 0
	// (the default) off.
	OriginAssist float64 `yaml:"origin_assist"`
}

// Wire is the cost of the wire, as core.WireCost: h (peer), h_o (origin)
// and a (ack). A zero field takes core.MeasuredWire's value, what `shoal
// bench netbed` measured on shaped Linux links; payload_only charges
// nothing (the model before it had a wire).
type Wire struct {
	Peer        float64 `yaml:"peer"`
	Origin      float64 `yaml:"origin"`
	Ack         float64 `yaml:"ack"`
	PayloadOnly bool    `yaml:"payload_only"`
}

// Cost is the wire cost the links charge.
func (w Wire) Cost() core.WireCost {
	if w.PayloadOnly {
		return core.PayloadOnly
	}
	c := core.MeasuredWire
	if w.Peer != 0 {
		c.Peer = w.Peer
	}
	if w.Origin != 0 {
		c.Origin = w.Origin
	}
	if w.Ack != 0 {
		c.Ack = w.Ack
	}
	return c
}

// Media describes the stream for vod and live scenarios.
type Media struct {
	Bitrate Rate `yaml:"bitrate"`
	Segment Dur  `yaml:"segment"` // default 2s
	// StartSegments buffered before playback starts (default 1).
	StartSegments int `yaml:"start_segments"`
	// Buffer is the player's forward buffer goal (on demand): it asks for
	// the next segment while it holds less than this ahead of the playhead
	// (default 30s). What the peer's gateway does with each request —
	// start-up segments from the origin, deadlines, look-ahead, the late
	// fallback — is the playback rules' (swarm/policy/playback.go), not a
	// scenario knob.
	Buffer Dur `yaml:"buffer"`
	// Lookahead is no longer read: deadlines follow the gateway's rules.
	// A scenario that sets it is refused with a message saying so.
	Lookahead *Dur `yaml:"lookahead"`
	// Delay is how many segments behind the live edge a viewer starts
	// (live; default policy.LivePlayerDelay).
	Delay int `yaml:"delay"`
	// Watch is how long a viewer watches (exponentially distributed with
	// this mean; 0 = to the end).
	Watch Dur `yaml:"watch"`
}

// defaultPlayerBuffer is media.buffer's default: the forward buffer a
// typical web player fills before it stops asking (hls.js's
// maxBufferLength). A model of the player, not of the peer.
const defaultPlayerBuffer = 30 * time.Second

// Class is a kind of peer.
type Class struct {
	Name string `yaml:"name"`
	// Share of joining peers in this class (normalised over the classes).
	Share float64 `yaml:"share"`
	Up    Rate    `yaml:"up"`   // upload capacity, bytes/s; 0 = none
	Down  Rate    `yaml:"down"` // download capacity, bytes/s; 0 = unlimited
	// Latency is the one-way latency of this peer's access link; a link's
	// one-way latency is the sum of both ends'.
	Latency Dur `yaml:"latency"`
	// NoUpload: never serves peers (metered mobile, free-rider).
	NoUpload bool `yaml:"no_upload"`
	// NoOrigin: cannot reach the origin (a firewall, a broken proxy). Its
	// neighbours still designate it for origin fetches, since real peers
	// cannot tell, and take its chunks over after their takeover wait.
	NoOrigin bool `yaml:"no_origin"`
	// NAT: accepts no inbound connections, so two NAT peers never connect.
	NAT    bool   `yaml:"nat"`
	Region string `yaml:"region"`
}

// Seeds are peers that hold the whole content from the start.
type Seeds struct {
	Count int    `yaml:"count"`
	Class string `yaml:"class"` // a Class name; default the first class
}

// Joins is the arrival process of the viewers/downloaders.
type Joins struct {
	Count int `yaml:"count"`
	Start Dur `yaml:"start"`
	// Over spreads the arrivals over this long.
	Over Dur `yaml:"over"`
	// Process is uniform (default: evenly spaced at random within Over) or
	// poisson (exponential gaps with mean Over/Count).
	Process string `yaml:"process"`
}

// Leave says when peers go.
type Leave struct {
	// AfterComplete: a file peer leaves this long after completing; nil
	// or negative = it stays and seeds to the end.
	AfterComplete *Dur `yaml:"after_complete"`
	// Churn: for live, a viewer leaves and a new one joins at this rate
	// (per viewer per hour) — on top of Media.Watch.
	Churn float64 `yaml:"churn_per_hour"`
}

// Event changes the world at a time.
type Event struct {
	At Dur `yaml:"at"`
	// Action: seeds-leave (every initial seed goes), cut (Region loses
	// every link outside it, the origin included), heal (undo cut).
	Action string `yaml:"action"`
	Region string `yaml:"region"`
}

// Dur is a YAML duration.
type Dur time.Duration

// D returns the time.Duration.
func (d Dur) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses "90s".
func (d *Dur) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%w: line %d: %v", ErrScenario, n.Line, err)
	}
	*d = Dur(v)
	return nil
}

// Size is a YAML byte count.
type Size int64

// UnmarshalYAML parses "1GiB".
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := core.ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("%w: line %d: %v", ErrScenario, n.Line, err)
	}
	*s = Size(v)
	return nil
}

// Rate is a YAML rate in bytes/s.
type Rate float64

// UnmarshalYAML parses "20Mbit".
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := core.ParseRate(n.Value)
	if err != nil {
		return fmt.Errorf("%w: line %d: %v", ErrScenario, n.Line, err)
	}
	*r = Rate(v)
	return nil
}

// Load reads a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return Parse(b)
}

// Parse decodes a scenario and fills its defaults.
func Parse(b []byte) (*Scenario, error) {
	var s Scenario
	if err := yaml.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrScenario, err)
	}
	if err := s.fill(); err != nil {
		return nil, err
	}
	return &s, nil
}

// P2P reports whether peers exchange chunks (false: CDN-only baseline).
func (s *Scenario) P2P() bool { return s.Swarm.P2P == nil || *s.Swarm.P2P }

// WithP2P returns a copy with P2P on or off.
func (s *Scenario) WithP2P(on bool) *Scenario {
	c := *s
	c.Swarm.P2P = &on
	return &c
}

// PickOrder is the policy.Order that Swarm.Order names.
func (s *Scenario) PickOrder() policy.Order {
	if s.Swarm.Order == "sequential" {
		return policy.Sequential
	}
	return policy.RarestFirst
}

func (s *Scenario) fill() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrScenario, s.Name, fmt.Sprintf(f, a...))
	}
	if s.Name == "" {
		s.Name = "scenario"
	}
	if c := s.Wire.Cost(); c.Peer < 1 || c.Origin < 1 || c.Ack < 0 || c.Ack >= 1 {
		return bad("wire: peer and origin are wire bytes per payload byte (at least 1), ack a fraction of what is received (0 to 1): got %+v", c)
	}
	switch s.Kind {
	case "":
		s.Kind = KindFile
	case KindFile, KindVOD, KindLive:
	default:
		return bad("kind %q: want file, vod or live", s.Kind)
	}
	if s.Kind != KindFile {
		if s.Media.Bitrate <= 0 {
			return bad("media.bitrate is required for %s", s.Kind)
		}
		if s.Media.Segment <= 0 {
			s.Media.Segment = Dur(2 * time.Second)
		}
		s.Content.Chunk = Size(float64(s.Media.Bitrate) * s.Media.Segment.D().Seconds())
		if s.Content.Size <= 0 {
			s.Content.Size = Size(float64(s.Media.Bitrate) * s.Duration.D().Seconds())
		}
		if s.Media.StartSegments <= 0 {
			s.Media.StartSegments = 1
		}
		if s.Media.Lookahead != nil {
			return bad("media.lookahead is gone: segment deadlines now follow the gateway's playback rules (policy.Playback: %d segments ahead, due by the player's buffer); media.buffer sets the player's buffer goal", policy.LookaheadSegments)
		}
		if s.Media.Buffer <= 0 {
			s.Media.Buffer = Dur(defaultPlayerBuffer)
		}
		if s.Media.Delay <= 0 {
			s.Media.Delay = policy.LivePlayerDelay
		}
	}
	if s.Duration <= 0 {
		return bad("duration is required")
	}
	if s.Content.Chunk <= 0 {
		s.Content.Chunk = Size(core.DefaultChunkSize)
	}
	if s.Content.Size <= 0 {
		return bad("content.size is required")
	}
	if n := int64(s.Content.Size) / int64(s.Content.Chunk); n > 1<<20 {
		return bad("%d chunks: use a larger chunk", n)
	}
	if s.Origin.Latency <= 0 {
		s.Origin.Latency = Dur(20 * time.Millisecond)
	}
	if s.Origin.Parallel <= 0 {
		s.Origin.Parallel = policy.DefaultOriginParallel
	}
	if s.Swarm.Neighbours <= 0 {
		s.Swarm.Neighbours = 40
	}
	if s.Swarm.MaxPeers <= 0 {
		s.Swarm.MaxPeers = policy.DefaultMaxPeers
	}
	if s.Swarm.MaxPeers > 250 {
		return bad("max_peers %d: at most 250", s.Swarm.MaxPeers)
	}
	if s.Swarm.Tick <= 0 {
		s.Swarm.Tick = Dur(time.Second)
	}
	if s.Swarm.Grace <= 0 {
		s.Swarm.Grace = Dur(policy.DefaultGrace)
	}
	if s.Swarm.Slots <= 0 {
		s.Swarm.Slots = policy.DefaultSlots
	}
	switch s.Swarm.Order {
	case "", "rarest", "sequential":
	default:
		return bad("swarm.order %q: want rarest or sequential", s.Swarm.Order)
	}
	if len(s.Classes) == 0 {
		return bad("at least one peer class is required")
	}
	total := 0.0
	for k, c := range s.Classes {
		if c.Name == "" {
			s.Classes[k].Name = fmt.Sprintf("class%d", k)
		}
		if c.Share < 0 || c.Up < 0 || c.Down < 0 {
			return bad("class %s: negative share or rate", c.Name)
		}
		total += c.Share
	}
	if total <= 0 {
		for k := range s.Classes {
			s.Classes[k].Share = 1
		}
	}
	if s.Seeds.Class != "" && s.classIndex(s.Seeds.Class) < 0 {
		return bad("seeds.class %q is not a class", s.Seeds.Class)
	}
	if s.Joins.Count < 0 || s.Seeds.Count < 0 {
		return bad("negative peer count")
	}
	switch s.Joins.Process {
	case "":
		s.Joins.Process = "uniform"
	case "uniform", "poisson":
	default:
		return bad("joins.process %q: want uniform or poisson", s.Joins.Process)
	}
	if s.Origin.Off && s.Seeds.Count == 0 {
		return bad("no origin and no seeds: nobody has the content")
	}
	for _, e := range s.Events {
		switch e.Action {
		case "seeds-leave":
		case "cut", "heal":
			if e.Region == "" {
				return bad("event %s at %v needs a region", e.Action, e.At.D())
			}
		default:
			return bad("event %q: want seeds-leave, cut or heal", e.Action)
		}
	}
	if s.Sample <= 0 {
		s.Sample = Dur(10 * time.Second)
	}
	return nil
}

func (s *Scenario) classIndex(name string) int {
	for k, c := range s.Classes {
		if c.Name == name {
			return k
		}
	}
	return -1
}
