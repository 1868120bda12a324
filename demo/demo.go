package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/origin"
	"github.com/shoal-cdn/shoal/publish"
	"github.com/shoal-cdn/shoal/tracker"
)

// Config tunes the demo.
type Config struct {
	Dir    string    // working directory; default a temporary one, removed after
	Size   int64     // sample size in bytes; default 32 MiB
	Peers  int       // swarm size; default 20
	Out    io.Writer // where the story is told
	Linger bool      // keep a gateway (and the swarm) up until ctx ends
	// Memory runs the peers on an in-memory network instead of libp2p on
	// loopback (tests).
	Memory bool
}

// Run publishes a sample, starts an origin and a tracker on loopback, and
// lets a swarm of peers fetch the sample, printing each peer's time, where
// the bytes came from and the offload ratio.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Size <= 0 {
		cfg.Size = 32 << 20
	}
	if cfg.Peers <= 0 {
		cfg.Peers = 20
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	w := cfg.Out
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "shoal-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	src, layoutDir := filepath.Join(cfg.Dir, "src"), filepath.Join(cfg.Dir, "origin")
	if err := writeSample(src, cfg.Size); err != nil {
		return err
	}
	priv, pub, err := manifest.GenerateKey()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "publisher key   %s\n", pub)
	t0 := time.Now()
	res, err := publish.Publish(ctx, publish.Config{Key: priv, Out: layoutDir, Paths: []string{filepath.Join(src, "sample")}})
	if err != nil {
		return err
	}
	el := time.Since(t0)
	fmt.Fprintf(w, "published       %d files, %s in %d chunks (%d stored: identical chunks kept once) in %v\n",
		len(res.Manifest.Files), agent.HumanBytes(res.Bytes), res.Chunks, res.NewChunks, el.Round(time.Millisecond))
	fmt.Fprintf(w, "content ID      %s\n", res.ID)

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var servers sync.WaitGroup
	serve := func(h http.Handler, serveFn func(context.Context, net.Listener) error) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		servers.Add(1)
		go func() {
			defer servers.Done()
			serveFn(sctx, ln)
		}()
		return "http://" + ln.Addr().String(), nil
	}
	defer servers.Wait()
	defer stop()
	osrv, err := origin.New(origin.Config{Dir: layoutDir})
	if err != nil {
		return err
	}
	originURL, err := serve(osrv.Handler(), osrv.Serve)
	if err != nil {
		return err
	}
	// The demo's peers are in-memory hosts of this process: they hold no
	// key to sign announces with, and all come from loopback.
	tsrv := tracker.New(tracker.Config{Interval: 2 * time.Second, Logger: slog.New(slog.DiscardHandler),
		AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1})
	trackerURL, err := serve(tsrv.Handler(), tsrv.Serve)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "origin          %s\ntracker         %s\n", originURL, trackerURL)

	mem := netx.NewMemNetwork()
	peers := make([]*agent.Peer, cfg.Peers)
	for i := range peers {
		pc := agent.PeerConfig{
			CacheDir: filepath.Join(cfg.Dir, fmt.Sprintf("peer%02d", i)), Tracker: trackerURL, Origin: originURL, Trust: manifest.NewKeySet(pub),
			Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AnnounceInterval: 2 * time.Second,
			Logger: slog.New(slog.DiscardHandler),
		}
		if cfg.Memory {
			if pc.Host, err = mem.NewHost(""); err != nil {
				return err
			}
		}
		if peers[i], err = agent.NewPeer(sctx, pc); err != nil {
			return err
		}
		defer peers[i].Close()
	}
	defer stop() // stop the swarm before closing the peers
	fmt.Fprintf(w, "swarm           %d peers join at once (a flash crowd)\n", cfg.Peers)
	t0 = time.Now()
	times := make([]time.Duration, cfg.Peers)
	errs := make([]error, cfg.Peers)
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := p.JoinAll(sctx, res.ID)
			if err != nil {
				errs[i] = err
				return
			}
			select {
			case <-s.Done():
				times[i] = time.Since(t0)
			case <-sctx.Done():
				errs[i] = sctx.Err()
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("demo peer %d: %w", i, err)
		}
	}
	report(w, peers, times, osrv.BytesServed())

	if cfg.Linger {
		gw, err := serve(peers[0].Gateway(), func(ctx context.Context, ln net.Listener) error {
			s := &http.Server{Handler: peers[0].Gateway()}
			go func() { <-ctx.Done(); s.Close() }()
			return s.Serve(ln)
		})
		if err != nil {
			return err
		}
		f := res.Manifest.Files[0]
		fmt.Fprintf(w, "\ngateway of peer 0, up until Ctrl-C:\n  %s/api/status\n  %s/metrics\n  %s/c/%s/%s\n  tracker: %s/metrics\n",
			gw, gw, gw, res.ID, f.Path, trackerURL)
		<-ctx.Done()
	}
	return nil
}

func report(w io.Writer, peers []*agent.Peer, times []time.Duration, egress int64) {
	type row struct {
		i                   int
		t                   time.Duration
		fromPeers, fromOrig int64
		up                  int64
	}
	var rows []row
	var sumPeers, sumOrig int64
	for i, p := range peers {
		st := p.Status()
		r := row{i: i, t: times[i]}
		for _, s := range st.Swarms {
			r.fromPeers += s.BytesFromPeers
			r.fromOrig += s.BytesFromOrigin
			r.up += s.BytesUploaded
		}
		sumPeers += r.fromPeers
		sumOrig += r.fromOrig
		rows = append(rows, r)
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].t < rows[b].t })
	fmt.Fprintf(w, "\n  peer   done after   from peers   from origin   uploaded\n")
	for _, r := range rows {
		fmt.Fprintf(w, "  %4d   %10v   %10s   %11s   %8s\n", r.i, r.t.Round(time.Millisecond), agent.HumanBytes(r.fromPeers), agent.HumanBytes(r.fromOrig), agent.HumanBytes(r.up))
	}
	total := sumPeers + sumOrig
	// Each peer fetches every distinct chunk once, so one peer's total is
	// the content's distinct bytes (identical chunks are stored once).
	unique := rows[0].fromPeers + rows[0].fromOrig
	fmt.Fprintf(w, "\noffload ratio   %.1f%% of %s delivered came from peers\n", 100*float64(sumPeers)/float64(max(total, 1)), agent.HumanBytes(total))
	fmt.Fprintf(w, "origin egress   %s = %.2f × the content's %s of distinct chunks (without the swarm: %d ×)\n",
		agent.HumanBytes(egress), float64(egress)/float64(max(unique, 1)), agent.HumanBytes(unique), len(peers))
}
