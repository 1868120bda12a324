package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/origin"
	"github.com/shoal-cdn/shoal/tracker"
)

// streamAnnounce is the viewers' peers' tracker announce interval: every
// live segment is a swarm of its own that lives a few segment durations, so
// peers must learn each other within a second, not the default 30 s.
const streamAnnounce = time.Second

// publisherPoll is how often the live publisher reads the source playlist.
const publisherPoll = 100 * time.Millisecond

// serveLoopback serves h on a fresh loopback port until stop is called.
func serveLoopback(h http.Handler) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("bench: listen: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { hs.Serve(ln); close(done) }()
	return "http://" + ln.Addr().String(), func() { hs.Close(); <-done }, nil
}

// serveOrigin serves the layout or directory dir with the CDN's upload cap.
func serveOrigin(cfg *StreamConfig, dir string) (*origin.Server, string, func(), error) {
	srv, err := origin.New(origin.Config{Dir: dir, UploadLimit: cfg.OriginUp, Logger: cfg.Logger})
	if err != nil {
		return nil, "", nil, fmt.Errorf("bench: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, fmt.Errorf("bench: origin listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	return srv, "http://" + ln.Addr().String(), func() { cancel(); <-done }, nil
}

// streamKey is the publisher key, from the seed.
func streamKey(seed uint64) ed25519.PrivateKey {
	var ks [32]byte
	binary.LittleEndian.PutUint64(ks[:], seed)
	copy(ks[8:], "shoal bench stream key")
	return ed25519.NewKeyFromSeed(ks[:])
}

// viewerPeers starts each viewer session's own peer: an in-memory host with
// the viewer's link caps, a real tracker on loopback to find the others,
// the origin for what no peer has, and the peer's gateway on a loopback
// port for the player.
type viewerPeers struct {
	cfg     *StreamConfig
	dir     string // the peers' caches go under it
	mem     *netx.MemNetwork
	tracker string
	origin  string
	trust   manifest.PublicKey
	// operators (the A/B run) are the keys of the policy the peers obey;
	// with them, peers report telemetry every abTelemetry.
	operators *manifest.KeySet
}

// open starts viewer k's peer for its session gen and returns the player's
// environment, playing path on the gateway.
func (vp *viewerPeers) open(ctx context.Context, k, gen int, path string) (viewerEnv, error) {
	cfg := vp.cfg
	name := fmt.Sprintf("viewer-%02d-%d", k, gen)
	var base netx.Host
	var err error
	if cfg.Transport == TransportLibp2p {
		base, err = netx.NewLibp2pHost(ctx, netx.Libp2pConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	} else {
		base, err = vp.mem.NewHost(netx.PeerID(name))
	}
	if err != nil {
		return viewerEnv{}, fmt.Errorf("bench: %w", err)
	}
	down := newDownLimiter(cfg.PeerDown)
	pctx, cancel := context.WithCancel(ctx)
	cacheDir := filepath.Join(vp.dir, name)
	pc := agent.PeerConfig{
		CacheDir: cacheDir, Tracker: vp.tracker, Origin: vp.origin, Trust: manifest.NewKeySet(vp.trust),
		Host: shapeDown(netx.Shape(base, cfg.PeerUp, 0), down), AnnounceInterval: streamAnnounce,
		OriginHTTP: shapedHTTP(down, 2*originParallel), Logger: cfg.Logger.With("viewer", name),
	}
	if vp.operators != nil {
		pc.OperatorKeys, pc.TelemetryInterval = vp.operators, abTelemetry
	}
	p, err := agent.NewPeer(pctx, pc)
	if err != nil {
		cancel()
		base.Close()
		return viewerEnv{}, fmt.Errorf("bench: %s: %w", name, err)
	}
	gw, stopGW, err := serveLoopback(p.Gateway())
	if err != nil {
		cancel()
		p.Close()
		return viewerEnv{}, err
	}
	// The player talks to its own peer on the same machine: no shaping.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	return viewerEnv{
		playlist: gw + path, client: hc,
		counts: func() peerCounts {
			st := p.Status()
			c := peerCounts{fromPeers: st.BytesFromPeers, fromOrigin: st.BytesFromOrigin}
			for _, sw := range st.Swarms {
				c.chunks += int64(sw.Have)
				c.haveFrames += sw.HaveFrames
				c.haves += sw.Haves
				c.received += sw.PeerDataReceived + sw.OriginDataReceived
			}
			return c
		},
		cohort: p.Cohort,
		stop: func() {
			hc.CloseIdleConnections()
			stopGW()
			cancel()
			p.Close()
			// The peer is gone: free its cache, so the disk holds only
			// the peers still playing.
			os.RemoveAll(cacheDir)
		},
	}, nil
}

// p2pTracker is the P2P run's tracker.
type p2pTracker struct {
	url  string
	stop func()
	// operators are the keys of its policy (the A/B run), nil otherwise.
	operators *manifest.KeySet
}

// serveTracker serves a tracker on loopback whose peers announce every
// streamAnnounce; in the A/B run it holds the operator's policy.
func serveTracker(ctx context.Context, cfg *StreamConfig) (*p2pTracker, error) {
	// Viewers are shaped or in-memory hosts (no signing key) on one
	// loopback: the benchmark measures delivery, not the tracker's checks.
	tc := tracker.Config{Interval: streamAnnounce, Logger: cfg.Logger,
		AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1, AdminToken: StreamAdminToken}
	if cfg.CohortSplit > 0 {
		tc.OperatorKeys = []manifest.PublicKey{manifest.PublicOf(operatorKey(cfg.Seed))}
	}
	srv := tracker.New(tc)
	t := &p2pTracker{}
	if cfg.CohortSplit > 0 {
		var err error
		if t.operators, err = abTracker(ctx, cfg, srv); err != nil {
			return nil, err
		}
	}
	var err error
	if t.url, t.stop, err = serveLoopback(srv.Handler()); err != nil {
		return nil, err
	}
	if cfg.OnTracker != nil {
		cfg.OnTracker(t.url)
	}
	return t, nil
}

// finish completes run in the A/B run (its cohorts, from the players and
// from the tracker's fleet telemetry), then holds the tracker if asked.
func (t *p2pTracker) finish(ctx context.Context, cfg *StreamConfig, run *StreamRun) {
	if t.operators != nil {
		run.Cohorts = splitCohorts(run)
		fleet, err := fleetByCohort(ctx, t.url)
		if err != nil {
			run.FleetErr = err.Error()
		}
		for i := range run.Cohorts {
			run.Cohorts[i].Fleet = fleet[run.Cohorts[i].Cohort]
		}
	}
	if cfg.Hold > 0 && ctx.Err() == nil {
		cfg.Progress(fmt.Sprintf("holding the tracker for %v: %s/dashboard/#token=%s", cfg.Hold, t.url, StreamAdminToken))
		core.Sleep(ctx, cfg.Hold)
	}
}

// runStreamP2P plays the live stream through Shoal: the source's output is
// published as a live channel into an origin layout, and every viewer plays
// /live/<channel>/index.m3u8 from the gateway of its own peer (viewerPeers).
func runStreamP2P(ctx context.Context, cfg StreamConfig, dir string) (*StreamRun, error) {
	wall := time.Now()
	dir = filepath.Join(dir, "p2p")
	src, err := newStreamSource(&cfg, filepath.Join(dir, "watch"))
	if err != nil {
		return nil, err
	}
	if err := src.prime(); err != nil {
		return nil, err
	}
	key := streamKey(cfg.Seed)
	pub, err := live.NewPublisher(live.PublisherConfig{
		Key: key, Channel: "bench", Watch: src.dir, Out: filepath.Join(dir, "origin"),
		Window: streamWindow, ChunkSize: cfg.ChunkSize, Poll: publisherPoll, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	// The first update exists before anyone arrives: the stream is on air.
	if _, err := pub.Step(ctx); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	srv, originURL, stopOrigin, err := serveOrigin(&cfg, filepath.Join(dir, "origin"))
	if err != nil {
		return nil, err
	}
	defer stopOrigin()
	tr, err := serveTracker(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer tr.stop()

	sctx, stopSource := context.WithCancel(ctx)
	srcDone := make(chan error, 2)
	go func() { srcDone <- src.run(sctx) }()
	go func() { srcDone <- pub.Run(sctx) }()
	defer func() {
		stopSource()
		<-srcDone
		<-srcDone
	}()

	vp := &viewerPeers{cfg: &cfg, dir: filepath.Join(dir, "peers"), mem: netx.NewMemNetwork(), tracker: tr.url, origin: originURL, trust: manifest.PublicOf(key), operators: tr.operators}
	playlist := "/live/" + pub.ID().String() + "/index.m3u8"
	open := func(ctx context.Context, k, gen int) (viewerEnv, error) {
		return vp.open(ctx, k, gen, playlist)
	}
	run := &StreamRun{Name: "p2p"}
	updates0, segments0 := srv.ChannelUpdateRequests(), src.written.Load()
	cpu := startCPU()
	run.Sessions = runViewers(ctx, &cfg, "p2p", open, srv.BytesServed)
	run.CPU, run.ViewingWall = cpu()
	run.UpdateRequests, run.UpdateSegments = srv.ChannelUpdateRequests()-updates0, src.written.Load()-segments0
	run.summarize(srv.BytesServed(), srv.Requests())
	for _, s := range run.Sessions {
		run.PeerSegments += float64(s.Startup+s.PlayWall+s.StallWall) / float64(cfg.Segment)
	}
	run.Wall = time.Since(wall)
	tr.finish(ctx, &cfg, run)
	if err := ctx.Err(); err != nil {
		return run, fmt.Errorf("bench: p2p run interrupted: %w", err)
	}
	return run, nil
}
