package bench

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/origin"
	"github.com/shoal-cdn/shoal/store"
	"github.com/shoal-cdn/shoal/swarm"
)

// originParallel is each peer's origin requests in flight (swarm's default).
const originParallel = 4

// benchPeer is one emulated receiver: its own shaped host, store, origin
// client and session.
type benchPeer struct {
	name    string
	joinAt  time.Duration
	host    netx.Host
	node    *swarm.Node
	sess    *swarm.Session
	store   *store.Store
	oc      *cdn.Client
	stopped chan struct{} // closed once everything of the peer is closed

	mu       sync.Mutex    // guards the fields below
	joined   bool          // Run started
	finished time.Duration // since start, when Done closed
	complete bool
}

// RunSwarm runs one swarm benchmark and returns what it measured. On ctx
// cancellation it shuts everything down and returns the partial result with
// an error wrapping ctx's.
func RunSwarm(ctx context.Context, cfg SwarmConfig) (*SwarmResult, error) {
	wallStart := time.Now()
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.Dir, "shoal-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)

	content, layoutDir, err := publishContent(ctx, dir, cfg.Seed, cfg.Size, cfg.ChunkSize)
	if err != nil {
		return nil, err
	}
	srv, err := origin.New(origin.Config{Dir: layoutDir, UploadLimit: cfg.OriginUp, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: origin listen: %w", err)
	}
	// The origin outlives the peers so that their shutdown never races a
	// vanished server.
	octx, stopOrigin := context.WithCancel(context.Background())
	originDone := make(chan error, 1)
	go func() { originDone <- srv.Serve(octx, ln) }()
	defer func() {
		stopOrigin()
		<-originDone
	}()

	peers, err := newPeers(cfg, content, "http://"+ln.Addr().String(), dir)
	if err != nil {
		return nil, err
	}
	res, runErr := runPeers(ctx, cfg, peers, srv)
	res.Wall = time.Since(wallStart)
	return res, runErr
}

// newPeers builds every peer before the clock starts, so store and host
// setup do not count against the swarm.
func newPeers(cfg SwarmConfig, content *swarm.Content, originURL, dir string) ([]*benchPeer, error) {
	mem := netx.NewMemNetwork()
	var peers []*benchPeer
	fail := func(err error) ([]*benchPeer, error) {
		for _, p := range peers {
			p.close()
		}
		return nil, err
	}
	for k := range cfg.Peers {
		name := fmt.Sprintf("peer-%02d", k+1)
		base, err := mem.NewHost(netx.PeerID(name))
		if err != nil {
			return fail(fmt.Errorf("bench: %w", err))
		}
		down := newDownLimiter(cfg.PeerDown)
		host := shapeDown(netx.Shape(base, cfg.PeerUp, 0), down)
		st, err := store.Open(store.Config{Dir: filepath.Join(dir, "peers", name), Logger: cfg.Logger})
		if err != nil {
			host.Close()
			return fail(fmt.Errorf("bench: %s: %w", name, err))
		}
		oc, err := cdn.New(cdn.Config{BaseURL: originURL, HTTP: shapedHTTP(down, 2*originParallel)})
		if err != nil {
			host.Close()
			st.Close()
			return fail(fmt.Errorf("bench: %w", err))
		}
		node := swarm.NewNode(host, cfg.Logger)
		sess := swarm.NewSession(host.ID(), swarm.Config{
			Content: content, Store: st, Origin: oc,
			Rand:           rand.New(rand.NewPCG(cfg.Seed, uint64(k))),
			Logger:         cfg.Logger.With("peer", name),
			OriginParallel: originParallel,
			MaxPeers:       max(50, cfg.Peers),
			OriginAssist:   cfg.OriginAssist,
		})
		node.Add(sess)
		var joinAt time.Duration
		if cfg.Peers > 1 {
			joinAt = cfg.JoinSpread * time.Duration(k) / time.Duration(cfg.Peers-1)
		}
		peers = append(peers, &benchPeer{
			name: name, joinAt: joinAt, host: host, node: node, sess: sess,
			store: st, oc: oc, stopped: make(chan struct{}),
		})
	}
	return peers, nil
}

// close frees a peer whose session never ran.
func (p *benchPeer) close() {
	p.host.Close()
	p.store.Close()
	p.oc.Close()
}

// swarmRun is the state of one run shared by the joining goroutines.
type swarmRun struct {
	cfg   SwarmConfig
	start time.Time
	ctx   context.Context // the peers' lifetime
	wg    sync.WaitGroup  // join goroutines and sessions

	mu      sync.Mutex   // guards running
	running []*benchPeer // joined peers, in join order
}

// runPeers starts the clock, lets the peers join, waits for all of them to
// complete (or ctx to end), then stops them and collects the result.
func runPeers(ctx context.Context, cfg SwarmConfig, peers []*benchPeer, srv *origin.Server) (*SwarmResult, error) {
	pctx, stopPeers := context.WithCancel(ctx)
	defer stopPeers()
	r := &swarmRun{cfg: cfg, start: time.Now(), ctx: pctx}
	done := make(chan struct{}, len(peers))
	for _, p := range peers {
		r.wg.Add(1)
		go r.join(p, done)
	}

	prog := newProgressMeter(cfg, peers, srv, r.start)
	tick := time.NewTicker(cfg.ProgressEvery)
	defer tick.Stop()
	var runErr error
	for n := 0; n < len(peers) && runErr == nil; {
		select {
		case <-done:
			n++
		case <-tick.C:
			if cfg.Progress != nil {
				cfg.Progress(prog.snapshot())
			}
		case <-ctx.Done():
			runErr = fmt.Errorf("bench: interrupted after %v: %w", time.Since(r.start).Round(time.Millisecond), ctx.Err())
		}
	}
	tLast := time.Since(r.start)
	stopPeers()
	r.wg.Wait()
	for _, p := range peers {
		<-p.stopped
	}
	return collect(cfg, peers, srv, tLast), runErr
}

// join waits for p's arrival time, starts its session and connects it to
// every peer already in the swarm, as a tracker returning the whole swarm
// would; later arrivals connect to it in turn.
func (r *swarmRun) join(p *benchPeer, done chan<- struct{}) {
	defer r.wg.Done()
	if p.joinAt > 0 {
		t := time.NewTimer(p.joinAt)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			p.close()
			close(p.stopped)
			return
		}
	}
	if r.ctx.Err() != nil {
		p.close()
		close(p.stopped)
		return
	}
	p.mu.Lock()
	p.joined = true
	p.mu.Unlock()
	// Begin before publishing p to later joiners, so their dials are
	// accepted.
	p.sess.Begin(r.ctx)
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		p.sess.Run(r.ctx)
		p.close()
		close(p.stopped)
	}()
	go func() {
		defer r.wg.Done()
		select {
		case <-p.sess.Done():
			p.mu.Lock()
			p.finished, p.complete = time.Since(r.start), true
			p.mu.Unlock()
			done <- struct{}{}
		case <-r.ctx.Done():
		}
	}()
	r.mu.Lock()
	others := slices.Clone(r.running)
	r.running = append(r.running, p)
	r.mu.Unlock()
	for _, o := range others {
		if err := p.node.Connect(r.ctx, p.sess, o.node.ID(), nil); err != nil && r.ctx.Err() == nil {
			r.cfg.Logger.Warn("connect failed", "from", p.name, "to", o.name, "err", err)
		}
	}
}

// collect builds the result from the stopped peers and the origin.
func collect(cfg SwarmConfig, peers []*benchPeer, srv *origin.Server, tLast time.Duration) *SwarmResult {
	res := &SwarmResult{
		Config:      cfg,
		TStar:       LowerBound(cfg.Peers, cfg.Size, cfg.OriginUp, cfg.PeerUp, cfg.PeerDown),
		OriginBytes: srv.BytesServed(),
	}
	for _, p := range peers {
		st := p.sess.Stats()
		p.mu.Lock()
		pr := PeerResult{
			Name: p.name, Joined: p.joinAt, Finished: p.finished, Complete: p.complete,
			FromPeers: st.BytesFromPeers, FromOrigin: st.BytesFromOrigin, Uploaded: st.BytesUploaded,
		}
		p.mu.Unlock()
		res.Peers = append(res.Peers, pr)
		res.FromPeers += pr.FromPeers
		res.FromOrigin += pr.FromOrigin
		if pr.Complete {
			res.Completed++
			res.TLast = max(res.TLast, pr.Finished)
		}
	}
	if res.Completed < len(peers) {
		res.TLast = tLast // the swarm did not finish: T_last is at least the time run
	}
	slices.SortStableFunc(res.Peers, func(a, b PeerResult) int {
		switch {
		case a.Complete != b.Complete:
			if a.Complete {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Finished, b.Finished)
	})
	res.OriginRatio = float64(res.OriginBytes) / float64(cfg.Size)
	if res.TLast > 0 {
		res.Efficiency = float64(res.TStar) / float64(res.TLast)
	}
	return res
}
