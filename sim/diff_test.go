package sim

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/publish"
	"github.com/shoal-cdn/shoal/store"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// diffScenario is the small swarm both sides run: 5 peers joining at once,
// fully connected, 4 MiB in 64 chunks, links and origin fast enough that
// every transfer takes (almost) no time, and peers of the class "blocked"
// without origin access. It sets only the tick (the simulator's default is
// coarser than the session's); grace, origin parallelism and everything
// else are the defaults on both sides. The seed is chosen so that the class draw gives
// both classes (checked below).
const diffScenario = `
name: diff
seed: 3
kind: file
duration: 10m
content: {size: 4MiB, chunk: 64KiB}
origin: {capacity: 10Gbit, latency: 1ms}
swarm: {tick: 100ms, neighbours: 10}
classes:
  - {name: reach, share: 3, up: 10Gbit, down: 10Gbit, latency: 1ms}
  - {name: blocked, share: 1, up: 10Gbit, down: 10Gbit, latency: 1ms, no_origin: true}
joins: {count: 5}
sample: 1s
`

// originLog is which peers asked the origin for each chunk, in order.
type originLog map[int][]policy.PeerKey

// originTimes is when each chunk was first asked of the origin, in virtual
// time since the peers started.
type originTimes map[int]time.Duration

// TestSessionAndSimMakeTheSameOriginDecisions drives the real swarm
// session (swarm.Session over the in-memory network, a store per peer, an
// in-process HTTP origin, virtual time in a synctest bubble) and the
// simulator through the same scenario, and compares who asks the origin for
// what: for every chunk, the list of peers that requested it from the
// origin. Both sides must give the same answer, chunk by chunk.
//
// Why that and not timings: the two differ in what the simulator leaves out
// (tick phases, handshake round trips, goroutine scheduling), so times
// agree only roughly; the decisions must agree exactly, because both run
// the same policy code (policy.OriginLane over policy.Picker, with the
// same PeerSeeds, since the session's peers are named as the simulator's).
// The scenario makes those decisions non-trivial: each chunk goes to the
// origin from its designated peer (the first in OriginRank among the five),
// and the chunks designated to a peer without origin access are taken over
// by the next-ranked peer after the takeover wait, not by the others
// (they wait k × TakeoverWait). The test also checks that independent
// expectation, so a change that broke both sides the same way still fails.
func TestSessionAndSimMakeTheSameOriginDecisions(t *testing.T) {
	sc := mustParse(t, diffScenario)
	if sc.Swarm.Tick.D() != policy.DefaultTick {
		t.Fatalf("scenario tick %v: the comparison needs the session's %v", sc.Swarm.Tick.D(), policy.DefaultTick)
	}
	simLog, simAt, classes := runSimOrigin(t, sc)
	blocked := map[policy.PeerKey]bool{}
	var keys []policy.PeerKey
	for _, k := range slices.Sorted(maps.Keys(classes)) {
		keys = append(keys, k)
		if classes[k] == "blocked" {
			blocked[k] = true
		}
	}
	if len(keys) != 5 || len(blocked) == 0 || len(blocked) == len(keys) {
		t.Fatalf("scenario drew classes %v: want 5 peers, some without origin access and some with", classes)
	}
	chunks := int(int64(sc.Content.Size) / int64(sc.Content.Chunk))

	// The expectation both sides must meet: the first-ranked peer with
	// origin access fetches each chunk, once.
	want := originLog{}
	takeovers := 0
	for i := range chunks {
		ranked := slices.Clone(keys)
		slices.SortFunc(ranked, func(a, b policy.PeerKey) int {
			ra, rb := policy.OriginRank(policy.PeerSeed(a), i), policy.OriginRank(policy.PeerSeed(b), i)
			return cmpU64(ra, rb)
		})
		if blocked[ranked[0]] {
			takeovers++
		}
		for _, k := range ranked {
			if !blocked[k] {
				want[i] = []policy.PeerKey{k}
				break
			}
		}
	}
	if takeovers == 0 {
		t.Fatal("no chunk is designated to a peer without origin access: the scenario tests no takeover")
	}

	realLog, realAt := runSessionsOrigin(t, sc, keys, blocked)
	for i := range chunks {
		if !slices.Equal(simLog[i], realLog[i]) {
			t.Errorf("chunk %d: origin asked by %v in the simulator, by %v in the real swarm", i, simLog[i], realLog[i])
		}
		// When: both run on virtual time, so this is no wall-clock race;
		// the times differ only by tick phases and the simulator's
		// millisecond latencies. A tolerance well under TakeoverWait
		// catches a drifted grace or takeover wait.
		if d := simAt[i] - realAt[i]; d < -diffSlack || d > diffSlack {
			t.Errorf("chunk %d: asked of the origin at %v in the simulator, at %v in the real swarm", i, simAt[i], realAt[i])
		}
		if !slices.Equal(realLog[i], want[i]) {
			t.Errorf("chunk %d: origin asked by %v, want only the first-ranked peer with origin access %v", i, realLog[i], want[i])
		}
	}
	t.Logf("%d chunks, %d taken over from a peer without origin access; peers without origin access: %v", chunks, takeovers, slices.Sorted(maps.Keys(blocked)))
}

// diffSlack is how far apart in virtual time the two sides may ask the
// origin for the same chunk: two 100 ms ticks (the phases of the session's
// and the simulated peer's loops differ) and the simulator's latencies.
const diffSlack = 300 * time.Millisecond

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// runSimOrigin runs sc in the simulator and returns its origin requests and
// each peer's class.
func runSimOrigin(t *testing.T, sc *Scenario) (originLog, originTimes, map[policy.PeerKey]string) {
	t.Helper()
	log, at, classes := originLog{}, originTimes{}, map[policy.PeerKey]string{}
	h := &hooks{
		originStart: func(w *world, n *node, i int) {
			if _, ok := at[i]; !ok {
				at[i] = w.now
			}
			log[i] = append(log[i], n.key)
		},
		sample: func(w *world) {
			for _, n := range w.nodes {
				classes[n.key] = w.sc.Classes[n.class].Name
			}
		},
	}
	res, err := run(context.Background(), sc, h)
	if err != nil {
		t.Fatal(err)
	}
	if done, inc := res.Completion(); inc > 0 || len(done) != 5 {
		t.Fatalf("simulator: %d complete, %d incomplete", len(done), inc)
	}
	return log, at, classes
}

// runSessionsOrigin publishes sc's content (random bytes from sc.Seed) and
// runs one real session per key, fully connected over an in-memory
// network, in a synctest bubble; the peers in blocked get no origin. It
// returns the origin requests, as the origin saw them.
func runSessionsOrigin(t *testing.T, sc *Scenario, keys []policy.PeerKey, blocked map[policy.PeerKey]bool) (originLog, originTimes) {
	t.Helper()
	content, dir := publishForDiff(t, sc)
	chunkOf := map[string]int{}
	for i := range content.Len() {
		chunkOf[layout.ChunkPath(content.Hash(i))] = i
	}
	var mu sync.Mutex
	log, at := originLog{}, originTimes{}
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()                                                      // virtual
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // virtual time
		defer cancel()
		mn := netx.NewMemNetwork()
		type peer struct {
			sess    *swarm.Session
			stopped chan struct{}
		}
		var peers []peer
		var nodes []*swarm.Node
		for k, key := range keys {
			host, err := mn.NewHost(netx.PeerID(key))
			if err != nil {
				t.Fatal(err)
			}
			st, err := store.Open(store.Config{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			var oc swarm.Origin // untyped nil: a peer without origin access
			if !blocked[key] {
				rt := &diskOrigin{dir: dir, got: func(path string) {
					mu.Lock()
					defer mu.Unlock()
					if i, ok := chunkOf[path]; ok {
						if _, ok := at[i]; !ok {
							at[i] = time.Since(start)
						}
						log[i] = append(log[i], key)
					}
				}}
				c, err := cdn.New(cdn.Config{BaseURL: "http://origin.test/", HTTP: &http.Client{Transport: rt}, Attempts: 1})
				if err != nil {
					t.Fatal(err)
				}
				oc = c
			}
			node := swarm.NewNode(host, nil)
			sess := swarm.NewSession(host.ID(), swarm.Config{
				Content: content, Store: st, Origin: oc,
				Rand: rand.New(rand.NewPCG(uint64(k), 9)),
				// Every other knob at the session's default: the
				// simulator's defaults must be the same ones.
			})
			node.Add(sess)
			p := peer{sess: sess, stopped: make(chan struct{})}
			sess.Begin(ctx)
			go func() {
				defer close(p.stopped)
				sess.Run(ctx)
				host.Close()
				st.Close()
			}()
			for _, o := range nodes {
				if err := node.Connect(ctx, sess, o.ID(), nil); err != nil {
					t.Fatalf("%s connecting to %s: %v", key, o.ID(), err)
				}
			}
			nodes = append(nodes, node)
			peers = append(peers, p)
		}
		for k, p := range peers {
			select {
			case <-p.sess.Done():
			case <-ctx.Done():
				t.Fatalf("peer %s incomplete after 10 virtual minutes: %+v", keys[k], p.sess.Stats())
			}
		}
		cancel()
		for _, p := range peers {
			<-p.stopped
		}
	})
	return log, at
}

// publishForDiff publishes one file of sc's size, random bytes from
// sc.Seed, in sc's chunk size, and returns its content and layout dir.
func publishForDiff(t *testing.T, sc *Scenario) (*swarm.Content, string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "diff.bin")
	b := make([]byte, int(sc.Content.Size))
	r := rand.New(rand.NewPCG(sc.Seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(sc.Seed)}, 32))
	dir := t.TempDir()
	res, err := publish.Publish(context.Background(), publish.Config{Key: key, Out: dir, ChunkSize: int64(sc.Content.Chunk), Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	var layers []manifest.HashLayer
	for _, f := range res.Manifest.Files {
		lb, err := os.ReadFile(filepath.Join(dir, "hashes", f.Root.String()))
		if err != nil {
			t.Fatal(err)
		}
		l, err := manifest.ParseHashLayer(f, lb)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	c, err := swarm.NewContent(res.ID, res.Manifest, layers)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != int(int64(sc.Content.Size)/int64(sc.Content.Chunk)) {
		t.Fatalf("published %d chunks, the scenario has %d", c.Len(), int64(sc.Content.Size)/int64(sc.Content.Chunk))
	}
	return c, dir
}

// diskOrigin is an HTTP origin in the test's process: it answers GETs from
// a published layout directory with no network, so the sessions' origin
// fetches run inside the synctest bubble, and it reports each path served.
type diskOrigin struct {
	dir string
	got func(path string)
}

func (o *diskOrigin) RoundTrip(r *http.Request) (*http.Response, error) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	b, err := os.ReadFile(filepath.Join(o.dir, filepath.FromSlash(p)))
	resp := &http.Response{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Request: r}
	if err != nil {
		resp.StatusCode, resp.Status = http.StatusNotFound, "404 Not Found"
		resp.Body = io.NopCloser(strings.NewReader(fmt.Sprintf("%s: not found", p)))
		return resp, nil
	}
	o.got(p)
	resp.StatusCode, resp.Status = http.StatusOK, "200 OK"
	resp.ContentLength = int64(len(b))
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}
