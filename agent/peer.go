package agent

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/accesslog"
	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/control"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/discovery/dht"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/swarm/policy"
	"github.com/shoal-cdn/shoal/token"
)

// PeerConfig configures a receiver that takes part in swarms: the daemon of
// `shoal peer`, and `shoal get --tracker`.
type PeerConfig struct {
	CacheDir    string           // cache and identity key; default DefaultCacheDir()
	Tracker     string           // tracker URLs, comma-separated, tried in turn (replicas); empty: no tracker (peers must be added by hand)
	Origin      string           // origin or CDN URL of the layout root
	Trust       *manifest.KeySet // publisher keys manifests must be signed by (any one of them)
	Listen      []string         // libp2p listen multiaddrs; default loopback TCP and QUIC on random ports
	UploadLimit float64          // bytes/s to peers, across swarms; 0: unlimited
	CacheSize   int64            // chunk cache quota in bytes; 0: unlimited
	Region      string           // region label sent to the tracker
	// Token is the access token presented to peers and the tracker; nil:
	// none. With one, peers must present a valid token of the same tenant
	// too, unless OpenSwarm.
	Token *TokenSource
	// OpenSwarm serves peers without a token even when Token is set.
	OpenSwarm bool
	// GatewayTokens makes the gateway serve content and live routes only
	// to requests with "Authorization: Bearer TOKEN", a token that admits
	// them to what they ask for (checked as between peers).
	GatewayTokens bool
	// Prefetch is what a read fetches beyond the bytes asked for:
	// PrefetchWindow (default) a read-ahead window following the reader,
	// PrefetchNone nothing, PrefetchAll the whole content of every swarm
	// joined (software updates, signage, pre-seeding). A gateway request
	// can override it with ?prefetch= or the X-Shoal-Prefetch header.
	Prefetch Prefetch
	// ReadAhead is the window's size in bytes (default DefaultReadAhead).
	ReadAhead int64
	// StatusOrigins are the web origins (scheme://host[:port]) whose pages
	// may read the gateway's /api/status and /metrics; "*" for any. Empty
	// (the default): none, as they tell what this machine watches. Content
	// and live routes are readable by any origin whatever this says.
	StatusOrigins []string

	// ScrubRate is how fast (bytes/s) the cache is re-verified in the
	// background (store.Scrub); 0: never. Reads verify what they touch
	// either way.
	ScrubRate float64

	// LiveChannels caps the live channels the gateway follows at once
	// (default DefaultLiveChannels). With that many followed and every
	// one being watched, a request for another is answered 503.
	LiveChannels int
	// LiveIdle is how long the gateway keeps following a live channel
	// after its last request (default DefaultLiveIdle; never less than
	// two target durations): then it stops polling it and leaves its
	// segments' swarms.
	LiveIdle time.Duration

	// OriginAssist is what this peer may take from the origin beyond the
	// chunks it is designated to fetch (or takes over), to finish sooner
	// at the cost of origin egress, as a fraction of each content's size:
	// 0 (the default) takes none, so a swarm costs the origin about one
	// copy; 0.3 lets each peer take up to 30 % more, so N peers cost at
	// most 1 + 0.3·N copies; a negative value sets no cap.
	OriginAssist float64
	// OriginRequests caps the chunk requests to the origin in flight at
	// once, across every swarm (default swarm.DefaultOriginRequests).
	// Failed ones back off, peer-wide, exponentially with jitter.
	OriginRequests int

	Logger *slog.Logger

	// BanFor is how long a peer that sent a chunk failing verification
	// stays banned, from every swarm and across restarts (the ban list is
	// CacheDir/bans.json); default swarm.DefaultBanFor.
	BanFor time.Duration

	// Gateway bounds what the gateway's clients can make the peer hold.
	Gateway GatewayLimits

	// Host replaces the libp2p host (tests and benchmarks pass an in-memory one).
	Host netx.Host
	// Relays, AutoNAT, HolePunching, NATPortMap and Private are the libp2p
	// host's connectivity behind NATs and firewalls (see netx.Libp2pConfig:
	// Private is relay-only mode, in which no other peer learns this
	// peer's IP address).
	Relays                                     []string
	AutoNAT, HolePunching, NATPortMap, Private bool
	// AnnounceInterval overrides the tracker's default announce interval (tests).
	AnnounceInterval time.Duration
	// OriginHTTP replaces the origin client's HTTP client (benchmarks pass
	// one whose connections are download-shaped); nil: cdn's default.
	OriginHTTP *http.Client

	// TrustFile, when set, is a file of trusted publisher keys (one per
	// line, # comments) added to Trust; it is re-read when it changes, so
	// a publisher's new key can be added and an old one removed without
	// a restart. A removed key's contents are left (not purged).
	TrustFile string
	// RevocationPoll is how often each trusted key's revocation list is
	// fetched from the origin (default DefaultRevocationPoll, ±10 %).
	// Lists also spread between peers by gossip.
	RevocationPoll time.Duration
	// DHT configures discovery through Shoal's DHT: a node runs when
	// DHT.Bootstrap is set or DHT.Server (on a libp2p host), provides every
	// content joined and looks up its providers.
	DHT dht.Config
	// PEXInterval is peer exchange's interval: the least time between two
	// messages to or from one neighbour (0: discovery.DefaultPEXInterval;
	// negative: no peer exchange).
	PEXInterval time.Duration

	// Identity is how the peer's libp2p identity is kept in CacheDir:
	// netx.IdentityFixed (the default: one key for good) or
	// netx.IdentityDaily (a key per UTC day from a secret seed; a running
	// peer takes the new day's identity at its next start).
	Identity netx.Identity
	// DSCP marks the peer's P2P sockets so networks can deprioritise its
	// traffic (0 or netx.DSCPOff: unmarked; `shoal peer` and `shoal get`
	// default to netx.DefaultDSCP, CS1). Origin requests are never marked.
	DSCP netx.DSCP
	// GossipInterval is the availability gossip's anti-entropy period:
	// each swarm's peers republish their summaries this often (default
	// DefaultGossipInterval); negative: no availability gossip.
	GossipInterval time.Duration
	// Audit receives security events (peers refused, bans and their
	// expiries, revocations enforced; nil: audit.Discard). An audit.Writer
	// is also registered on /metrics.
	Audit audit.Sink
	// AccessLog, when set, gets one line per gateway request (probes
	// excepted); the caller opens and closes it.
	AccessLog *accesslog.Log

	// TelemetryInterval is how often the peer sends the tracker a summary
	// (agent/telemetry.go; default DefaultTelemetryInterval, at least 1 s;
	// negative: never). Without a tracker none is sent.
	TelemetryInterval time.Duration
	// DeviceClass and NetworkLabel label the peer's telemetry (and a
	// policy's rules match DeviceClass): a device
	// class (desktop, mobile, tv, settop, server…) and an ISP or ASN
	// label, each at most 64 bytes of [a-zA-Z0-9._/-], or empty.
	DeviceClass, NetworkLabel string
	// TelemetryCohort, when set, names the peer's cohort in each report
	// ("experiment/variant", or "" for none); it is called once a report.
	// Unset, the cohorts come from the operator policy's experiments
	// (Peer.Cohort).
	TelemetryCohort func() string
	// OperatorKeys are the keys whose signed policies (control.Policy) the
	// peer obeys, learnt from the tracker, gossip and its cache; none: it
	// applies no policy (policy.go).
	OperatorKeys *manifest.KeySet
	// P2P is the peer's own P2P mode (control.On when empty): a policy can
	// make it stricter, never looser. UploadLimit is likewise the most a
	// policy's upload cap can allow.
	P2P control.P2P
	// Consent says the viewer consented to peer-to-peer delivery. (The
	// policy's rules match DeviceClass.)
	Consent bool
	// Metered and OnBattery say whether the peer is on a metered network
	// or on battery: ToggleAuto (the default) reads the system every
	// FactsPoll (NetworkManager's Metered property; PowerSupplyDir).
	Metered, OnBattery Toggle
	// FactsPoll is how often auto facts are re-read (DefaultFactsPoll).
	FactsPoll time.Duration
	// PowerSupplyDir replaces DefaultPowerSupplyDir (tests).
	PowerSupplyDir string
	// MeteredProbe replaces the NetworkManager reader (tests).
	MeteredProbe func(context.Context) (bool, error)
}

// Peer runs swarms for the contents it is asked for and keeps seeding what
// it holds.
type Peer struct {
	cfg PeerConfig
	// startupHold bounds a playback join's dial hold (startupDialHold;
	// tests lengthen it so that no pass depends on the machine's speed).
	startupHold time.Duration
	log         *slog.Logger
	cache       *cache
	origin      *cdn.Client
	gate        *swarm.OriginGate // the origin's share of the peer: cap and back-off
	tracker     *discovery.Trackers
	host        netx.Host
	node        *swarm.Node
	trust       *swarm.Trust // reputation and bans across every swarm
	upload      *swarm.Bucket
	ctx         context.Context
	wg          sync.WaitGroup
	plays       *playbacks    // the gateway's playback sessions (playback.go)
	live        *liveChannels // the gateway's followed live channels (live.go)
	gw          *gatewayBounds
	revs        *revocations    // revocation lists held (revoke.go)
	pol         *operatorPolicy // the operator policy and this peer's facts (policy.go)
	// stopBg ends the peer's own background loops (revocation polls, the
	// trust file watch), which Close ends even if NewPeer's ctx goes on.
	bg     context.Context
	stopBg context.CancelFunc
	audit  audit.Sink

	dht   *dht.DHT                 // nil without one (PeerConfig.DHT)
	pex   *discovery.PEX           // nil when off
	found map[Source]*sourceCounts // peers named and connected, per source; fixed at NewPeer

	gossipOnce sync.Once
	gsp        *live.Gossip // set by gossipOnce; nil without libp2p
	// verifier checks peers' and gateway clients' tokens.
	verifier *token.Verifier
	// segChan maps the live segments in followed channels' windows to
	// their channel (core.ContentID → manifest.ChannelID), so their swarms
	// accept channel-scoped tokens; entries leave with the window.
	segChan sync.Map

	mu     sync.Mutex
	joined map[core.ContentID]*joined // guarded by mu
	closed bool                       // guarded by mu: Close has begun; no new joins
	// starting counts joins still starting (including ones already left),
	// so Close waits for them before waiting on wg; Add happens under mu
	// only while !closed.
	starting sync.WaitGroup
}

type joined struct {
	sess      *swarm.Session
	ann       *discovery.Announcer
	ctx       context.Context // the session's; ends when it is left
	cancel    context.CancelFunc
	ready     chan struct{} // closed once sess is set (or err)
	stopped   chan struct{} // closed once the session's Run returned (nil if it never started)
	err       error
	startedAt time.Time

	lmu     sync.Mutex
	loading map[int]*layerCall // guarded by lmu: hash layers being fetched, by file
	pages   map[int]*layerCall // guarded by lmu: root pages being fetched, by page
	all     *swarm.Interest    // guarded by lmu: the whole content, once asked for (JoinAll)

	// dialHold (nil: none) is closed when the session may dial the peers
	// discovery finds: a join for a player's playlist holds the dials
	// until its playback's start-up segments are sent, at most
	// startupDialHold (see holdDials).
	dialHold    chan struct{}
	releaseOnce sync.Once
}

// isReady reports whether j's start has ended with a session.
func (j *joined) isReady() bool {
	select {
	case <-j.ready:
		return j.err == nil
	default:
		return false
	}
}

// startupDialHold bounds how long a join for a playback holds its dials.
// Every peer dialled answers with its bitfield (one bit per chunk: 3.2 KB
// for a 25,750-chunk content, ≈ 93 KB from 29 peers) on the viewer's
// download while the start-up segments, which come straight from the
// origin, are still on it. Start-up takes well under a second on a
// broadband link; the bound keeps a start-up that never ends (the player
// left) from keeping the swarm away.
const startupDialHold = 2 * time.Second

// holdDials makes j hold its dials until releaseDials or for at most d.
func (j *joined) holdDials(d time.Duration) {
	j.dialHold = make(chan struct{})
	time.AfterFunc(d, j.releaseDials)
}

// releaseDials lets j's session dial the peers it finds (again).
func (j *joined) releaseDials() {
	if j.dialHold != nil {
		j.releaseOnce.Do(func() { close(j.dialHold) })
	}
}

// dialsReleased waits until j may dial, or ctx ends (false).
func (j *joined) dialsReleased(ctx context.Context) bool {
	if j.dialHold == nil {
		return true
	}
	select {
	case <-j.dialHold:
		return true
	default:
	}
	select {
	case <-j.dialHold:
		return true
	case <-ctx.Done():
		return false
	}
}

// Prefetch is a read-ahead policy (PeerConfig.Prefetch).
type Prefetch string

// Prefetch policies.
const (
	PrefetchNone   Prefetch = "none"
	PrefetchWindow Prefetch = "window"
	PrefetchAll    Prefetch = "all"
)

// DefaultReadAhead is the read-ahead window of PrefetchWindow: enough to
// keep a stream flowing from peers at tens of Mbit/s, small next to any
// file worth swarming.
const DefaultReadAhead = 4 << 20

// ParseOriginAssist parses --origin-assist: off (0), max (no cap), or a
// fraction of each content, such as 0.3.
func ParseOriginAssist(s string) (float64, error) {
	switch strings.TrimSpace(s) {
	case "", "off", "0":
		return 0, nil
	case "max":
		return -1, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("%w: origin assist %q: want off, max or a fraction of the content such as 0.3", ErrBadInput, s)
	}
	return v, nil
}

// ParsePrefetch parses a policy name; "" is PrefetchWindow.
func ParsePrefetch(s string) (Prefetch, error) {
	switch Prefetch(s) {
	case "":
		return PrefetchWindow, nil
	case PrefetchNone, PrefetchWindow, PrefetchAll:
		return Prefetch(s), nil
	}
	return "", fmt.Errorf("%w: prefetch policy %q: want none, window or all", ErrBadInput, s)
}

// NewPeer opens the cache and the network host. Run it with Run.
func NewPeer(ctx context.Context, cfg PeerConfig) (*Peer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = DefaultCacheDir()
	}
	var err error
	if cfg.Prefetch, err = ParsePrefetch(string(cfg.Prefetch)); err != nil {
		return nil, err
	}
	if cfg.ReadAhead <= 0 {
		cfg.ReadAhead = DefaultReadAhead
	}
	if err := cfg.Gateway.fill(); err != nil {
		return nil, err
	}
	if err := cfg.checkPolicyConfig(); err != nil {
		return nil, err
	}
	if cfg.Trust == nil {
		cfg.Trust = manifest.NewKeySet()
	}
	if cfg.RevocationPoll <= 0 {
		cfg.RevocationPoll = DefaultRevocationPoll
	}
	tf, err := newTrustFile(cfg.Trust, cfg.TrustFile)
	if err != nil {
		return nil, err
	}
	p := &Peer{cfg: cfg, startupHold: startupDialHold, log: cfg.Logger, joined: map[core.ContentID]*joined{}, ctx: ctx, plays: newPlaybacks(core.RealClock{}),
		gw: newGatewayBounds(cfg.Gateway), audit: audit.OrDiscard(cfg.Audit)}
	p.revs = newRevocations(p)
	telemetryOn, err := p.checkTelemetry()
	if err != nil {
		return nil, err
	}
	if cfg.OriginRequests < 0 {
		return nil, fmt.Errorf("%w: origin requests %d: want a positive number (0: the default %d)", ErrBadInput, cfg.OriginRequests, swarm.DefaultOriginRequests)
	}
	p.gate = swarm.NewOriginGate(cfg.OriginRequests, nil)
	if p.origin, err = cdn.New(cdn.Config{BaseURL: cfg.Origin, HTTP: cfg.OriginHTTP}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if cfg.Tracker != "" {
		if p.tracker, err = discovery.ParseTrackers(cfg.Tracker, nil); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
		}
	}
	if p.cache, err = openCacheWith(cfg.CacheDir, cfg.CacheSize, true, cfg.Logger); err != nil {
		return nil, err
	}
	p.host = cfg.Host
	if p.host == nil {
		p.host, err = netx.NewLibp2pHost(ctx, netx.Libp2pConfig{ListenAddrs: cfg.Listen, StateDir: cfg.CacheDir, Identity: cfg.Identity, DSCP: cfg.DSCP,
			Relays: cfg.Relays, AutoNAT: cfg.AutoNAT, HolePunching: cfg.HolePunching, NATPortMap: cfg.NATPortMap, Private: cfg.Private})
		if err != nil {
			p.cache.Close()
			return nil, err
		}
	}
	if cfg.UploadLimit > 0 || cfg.OperatorKeys != nil {
		p.upload = swarm.NewBucket(cfg.UploadLimit, nil) // a policy may cap it later
	}
	p.verifier = p.tokenVerifier()
	p.live = newLiveChannels(p)
	p.node = swarm.NewNode(p.host, p.log)
	bg, stopBg := context.WithCancel(ctx)
	p.bg, p.stopBg = bg, stopBg
	if p.trust, err = p.newTrust(bg); err != nil { // its reporter stops with the peer's own loops
		stopBg()
		p.host.Close()
		p.cache.Close()
		return nil, err
	}
	p.node.UseTrust(p.trust)
	if err := p.startDiscovery(bg); err != nil {
		stopBg()
		p.host.Close()
		p.cache.Close()
		return nil, err
	}
	p.revs.loadCached(ctx)
	p.goOwned(func() { p.revs.run(bg, cfg.RevocationPoll) })
	p.pol = newOperatorPolicy(p)
	p.pol.start(ctx)
	p.node.ServeMeta(p.serveMeta) // after the policy: it asks it
	p.goOwned(func() { p.pol.run(bg) })
	if tf != nil {
		p.goOwned(func() { tf.watch(bg, p) })
	}
	p.setMetaAccess()
	if cfg.Token != nil {
		p.goOwned(func() {
			cfg.Token.watch(bg, DefaultTokenPoll, func(err error) { p.log.Warn("token file", "err", err) })
		})
	}
	if telemetryOn {
		p.goOwned(func() { p.runTelemetry(bg) })
	}
	if cfg.ScrubRate > 0 {
		p.goOwned(func() {
			if err := p.cache.chunks.Scrub(ctx, cfg.ScrubRate); ctx.Err() == nil {
				p.log.Error("cache scrub stopped", "err", err)
			}
		})
	}
	return p, nil
}

// ID is the peer's network identity.
func (p *Peer) ID() netx.PeerID { return p.host.ID() }

// Addrs are the addresses other peers dial.
func (p *Peer) Addrs() []string { return p.host.Addrs() }

// Close stops every swarm and frees the host and cache. Cancel the context
// given to NewPeer first.
func (p *Peer) Close() error {
	p.mu.Lock()
	p.closed = true
	js := make([]*joined, 0, len(p.joined))
	for _, j := range p.joined {
		js = append(js, j)
	}
	p.mu.Unlock()
	// A join still starting sets j.cancel (and adds to wg) before it
	// closes ready; with p.ctx cancelled it finishes quickly.
	p.starting.Wait()
	p.stopBg()
	for _, j := range js {
		if j.cancel != nil {
			j.cancel()
		}
	}
	p.wg.Wait()
	p.gossipOnce.Do(func() {}) // none starts from now on
	if p.gsp != nil {
		p.gsp.Wait() // its deliveries (revocation lists) write to the cache
	}
	p.trust.Flush() // the ban list on disk is the latest
	p.stopDiscovery()
	p.origin.Close()
	err := p.host.Close()
	if cerr := p.cache.Close(); err == nil {
		err = cerr
	}
	return err
}

// SeedCached joins the swarm of every content in the cache whose manifest is
// signed by the trusted key, so a restarted peer keeps seeding.
func (p *Peer) SeedCached(ctx context.Context) int {
	// Learn what was revoked while we were down before seeding anything.
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	p.revs.poll(pctx)
	cancel()
	ents, _ := os.ReadDir(p.cache.file(layout.ManifestDir))
	n := 0
	for _, e := range ents {
		id, err := core.ParseContentID(e.Name())
		if err != nil {
			continue
		}
		if _, err := p.Join(ctx, id); err == nil {
			n++
		}
	}
	return n
}

// Join returns the swarm session of id, starting it on first use: one
// verified manifest from the cache, the origin or peers, and nothing else.
// Hash layers and chunks are fetched as readers ask for them (or, with
// PrefetchAll, all at once in the background).
func (p *Peer) Join(ctx context.Context, id core.ContentID) (*swarm.Session, error) {
	return p.joinFor(ctx, id, false)
}

// joinPlayback is Join for a player's playlist request: a session it
// starts holds its dials until the playback's start-up segments are sent
// (releaseDials), so peers' bitfields do not share the viewer's download
// with them.
func (p *Peer) joinPlayback(ctx context.Context, id core.ContentID) (*swarm.Session, error) {
	return p.joinFor(ctx, id, true)
}

// joinFor is Join; playback says a session it starts holds its dials.
func (p *Peer) joinFor(ctx context.Context, id core.ContentID, playback bool) (*swarm.Session, error) {
	j, err := p.join(ctx, id, playback)
	if err != nil {
		return nil, err
	}
	if p.cfg.Prefetch == PrefetchAll {
		p.wantAll(j)
	}
	return j.sess, nil
}

// releaseDials ends the dial hold of content id's session, if any: its
// playback's start-up is over.
func (p *Peer) releaseDials(id core.ContentID) {
	if j := p.joinedOf(id); j != nil {
		j.releaseDials()
	}
}

// JoinAll is Join, then fetches the whole content in the background (hash
// layers, then every chunk), whatever the prefetch policy.
func (p *Peer) JoinAll(ctx context.Context, id core.ContentID) (*swarm.Session, error) {
	j, err := p.join(ctx, id, false)
	if err != nil {
		return nil, err
	}
	p.wantAll(j)
	return j.sess, nil
}

// wantAll makes j fetch its whole content: an Interest in every chunk, and
// every hash layer loaded in the background.
func (p *Peer) wantAll(j *joined) {
	j.lmu.Lock()
	defer j.lmu.Unlock()
	if j.all != nil {
		return
	}
	c := j.sess.Content()
	j.all = j.sess.Want(swarm.Range{From: 0, To: c.Len()})
	files := make([]int, len(c.Manifest.Files))
	for i := range files {
		files[i] = i
	}
	p.goOwned(func() {
		if err := p.layers(j.ctx, j, files); err != nil && j.ctx.Err() == nil {
			p.log.Warn("hash layers", "content", c.ID, "err", err)
		}
	})
}

// goOwned runs fn on a goroutine Close waits for, unless Close has begun
// (then it reports false and fn does not run): wg.Add never races Wait.
func (p *Peer) goOwned(fn func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn()
	}()
	return true
}

// joinedOf returns the join record of a running session.
func (p *Peer) joinedOf(id core.ContentID) *joined {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.joined[id]
}

// Layer loads the hash layer of file fi of a joined content (from the
// cache, the origin or peers), so its chunks can be fetched and verified.
func (p *Peer) Layer(ctx context.Context, sess *swarm.Session, fi int) error {
	if sess.Content().HasLayer(fi) {
		return nil
	}
	j := p.joinedOf(sess.Content().ID)
	if j == nil || j.sess != sess {
		return fmt.Errorf("content %s: %w", sess.Content().ID, swarm.ErrClosed)
	}
	return p.layer(ctx, j, fi)
}

func (p *Peer) join(ctx context.Context, id core.ContentID, playback bool) (*joined, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("join %s: peer closed", id)
	}
	j := p.joined[id]
	if j == nil {
		j = &joined{ready: make(chan struct{}), startedAt: time.Now()}
		if playback {
			j.holdDials(p.startupHold)
		}
		p.joined[id] = j
		p.starting.Add(1)
		defer p.starting.Done()
		p.mu.Unlock()
		j.err = p.start(id, j)
		if j.err != nil {
			p.mu.Lock()
			delete(p.joined, id)
			p.mu.Unlock()
		}
		close(j.ready)
	} else {
		p.mu.Unlock()
	}
	select {
	case <-j.ready:
		if j.err != nil {
			return nil, j.err
		}
		return j, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// start builds and runs the session of id, setting j.sess before any of
// its goroutines reads it.
func (p *Peer) start(id core.ContentID, j *joined) error {
	ctx := p.ctx
	if err := p.revs.contentRevoked(id); err != nil {
		return err
	}
	// Only a content seen before can have hash layers in the cache: a
	// first join skips looking for one per file.
	seen := p.cache.has(layout.ManifestPath(id))
	m, err := p.manifestOf(ctx, id)
	if err != nil {
		return err
	}
	gotManifest := time.Now() // a player's first request waits for all of the join
	c, err := swarm.NewContent(id, m, nil)
	if err != nil {
		return err
	}
	sess := swarm.NewSession(p.host.ID(), swarm.Config{
		Content: c, Store: p.cache.chunks, Origin: p.origin, Gate: p.gate, Upload: p.upload, Logger: p.log, Trust: p.trust,
		OnDemand: true, OriginAssist: p.cfg.OriginAssist != 0, AssistBudget: policy.AssistBudget(p.cfg.OriginAssist, m.TotalSize()),
		Access: p.access(id), Mode: p.pol.modeFor(id),
	})
	sctx, cancel := context.WithCancel(ctx)
	j.ctx, j.cancel = sctx, cancel
	j.sess = sess
	j.loading = map[int]*layerCall{}
	j.pages = map[int]*layerCall{}
	sess.Begin(sctx)
	p.node.Add(sess)
	p.pol.applySession(sess) // a policy taken since modeFor
	j.stopped = make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(j.stopped)
		sess.Run(sctx)
		p.node.Remove(id)
	}()
	if p.tracker != nil {
		acfg := discovery.AnnouncerConfig{
			Tracker: p.tracker, Content: id, Peer: string(p.host.ID()), Addrs: p.host.Addrs(), Region: p.cfg.Region,
			CurrentAddrs: p.host.Addrs, // a NATed peer's external and relay addresses come later
			Token:        p.tokenFunc(),
			Signer:       signerOf(p.host),
			Stats: func() discovery.Stats {
				st := sess.Stats()
				return discovery.Stats{Uploaded: st.BytesUploaded, Downloaded: st.BytesFromPeers + st.BytesFromOrigin, Left: c.Manifest.TotalSize() - sess.BytesHeld()}
			},
			OnPeers: func(peers []discovery.PeerInfo) {
				for _, pi := range peers {
					go p.connectFound(sctx, sess, SourceTracker, pi)
				}
			},
			DefaultInterval: p.cfg.AnnounceInterval,
			MinInterval:     min(time.Second, max(p.cfg.AnnounceInterval, 100*time.Millisecond)),
			RetryMin:        min(time.Second, max(p.cfg.AnnounceInterval, 100*time.Millisecond)),
			Logger:          p.log,
		}
		p.pol.announcerHooks(&acfg)
		ann, err := discovery.NewAnnouncer(acfg)
		if err != nil {
			cancel()
			return err
		}
		j.ann = ann
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			ann.Run(sctx)
		}()
		// Announce again at completion so the tracker lists us as a seed.
		go func() {
			select {
			case <-sess.Done():
				ann.AnnounceNow()
			case <-sctx.Done():
			}
		}()
	}
	p.discover(sctx, sess, id)
	if seen {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.loadCachedLayers(j)
		}()
	}
	p.startAvailGossip(sctx, sess)
	p.log.Info("joined swarm", "content", id, "name", m.Name, "chunks", c.Len(),
		"manifest", gotManifest.Sub(j.startedAt).Round(time.Microsecond), "took", time.Since(j.startedAt).Round(time.Microsecond))
	return nil
}

// gossip is the peer's GossipSub, started on first use when the host is
// libp2p (nil otherwise): live channel updates and revocation lists. It
// stops when the peer closes.
func (p *Peer) gossip() *live.Gossip {
	p.gossipOnce.Do(func() {
		if h, ok := netx.Libp2p(p.host); ok {
			g, err := live.NewGossip(p.bg, h, p.log)
			if err != nil {
				p.log.Warn("gossip unavailable: live channels and revocation lists by origin polling only", "err", err)
				return
			}
			p.gsp = g
		}
	})
	return p.gsp
}

// Sessions lists the running swarms.
func (p *Peer) Sessions() []*swarm.Session { return p.node.Sessions() }

// Node is the peer's swarm node (to connect peers by hand).
func (p *Peer) Node() *swarm.Node { return p.node }

// signerOf returns the host's identity signer, so the tracker knows our
// announces speak for our peer ID; nil for a host without a key (in-memory
// test networks), whose announces only trackers that allow unsigned ones
// accept.
func signerOf(h netx.Host) discovery.Signer {
	s, _ := h.(discovery.Signer)
	return s
}
