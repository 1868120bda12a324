package swarm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/origin"
	"github.com/shoal-cdn/shoal/publish"
	"github.com/shoal-cdn/shoal/store"
)

// harness runs many peers of one content in one process: an in-memory
// network, a store per peer and the real origin handler, which the peers
// reach in-process (handlerTransport), so a harness runs inside a
// testing/synctest bubble on virtual time as well as outside it.
// originURL serves the origin on loopback too, for tests that want a URL
// (outside a bubble only).
type harness struct {
	t       *testing.T
	net     *netx.MemNetwork
	content *Content
	data    map[string][]byte // file path → published bytes
	origin  *origin.Server
	url     string // guarded by mu: originURL's loopback server, once started
	ctx     context.Context
	mu      sync.Mutex
	peers   []*hpeer      // guarded by mu
	extra   []netx.PeerID // guarded by mu: hosts outside the harness every new peer dials too
	// onDemand makes peers added from now on fetch only what they Want.
	onDemand bool
	// configure, when set, adjusts each new peer's session Config.
	configure func(id string, c *Config)
	// wrapHost, when set, wraps each new peer's host (to hold its writes,
	// say) before its node and session use it.
	wrapHost func(id string, h netx.Host) netx.Host
}

type hpeer struct {
	node    *Node
	sess    *Session
	store   *store.Store
	cancel  context.CancelFunc
	stopped chan struct{}
}

// newHarness publishes files of the given sizes, generated from (name, seed).
func newHarness(t *testing.T, name string, seed uint64, chunkSize int64, sizes ...int) *harness {
	t.Helper()
	src := filepath.Join(t.TempDir(), name)
	os.MkdirAll(src, 0o755)
	r := rand.New(rand.NewPCG(seed, 1))
	h := &harness{t: t, net: netx.NewMemNetwork(), data: map[string][]byte{}}
	for k, n := range sizes {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		p := fmt.Sprintf("f%d.bin", k)
		h.data[p] = b
		if err := os.WriteFile(filepath.Join(src, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(seed)}, 32))
	dir := t.TempDir()
	res, err := publish.Publish(context.Background(), publish.Config{Key: key, Out: dir, ChunkSize: chunkSize, Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	var layers []manifest.HashLayer
	for _, f := range res.Manifest.Files {
		b, err := os.ReadFile(filepath.Join(dir, "hashes", f.Root.String()))
		if err != nil {
			t.Fatal(err)
		}
		l, err := manifest.ParseHashLayer(f, b)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	h.content, err = NewContent(res.ID, res.Manifest, layers)
	if err != nil {
		t.Fatal(err)
	}
	h.origin, err = origin.New(origin.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h.ctx = ctx
	return h
}

// originURL starts (once) and returns a loopback HTTP server for the
// origin. Not inside a synctest bubble: its listener would never let the
// bubble's clock advance.
func (h *harness) originURL() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.url == "" {
		hs := httptest.NewServer(h.origin.Handler())
		h.t.Cleanup(hs.Close)
		h.url = hs.URL
	}
	return h.url
}

// originClient is a client of the harness's origin that calls its handler
// in-process, with no network.
func (h *harness) originClient() *cdn.Client {
	c, err := cdn.New(cdn.Config{BaseURL: "http://origin.test/", HTTP: &http.Client{Transport: handlerTransport{h.origin.Handler()}}, BaseBackoff: 10 * time.Millisecond, Attempts: 2})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// handlerTransport answers HTTP requests by calling a handler in-process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// addPeer starts a peer and connects it to every running peer (as a tracker
// that returns the whole swarm would).
func (h *harness) addPeer(id string, withOrigin bool) *hpeer {
	h.t.Helper()
	return h.addPeerWith(id, withOrigin, nil, "")
}

// addPeerWith is addPeer with a peer-wide Trust (nil: the session's own)
// and a store directory (empty: a new temporary one), as a restarted peer
// would reopen them.
func (h *harness) addPeerWith(id string, withOrigin bool, trust *Trust, dir string) *hpeer {
	h.t.Helper()
	if dir == "" {
		dir = h.t.TempDir()
	}
	host, err := h.net.NewHost(netx.PeerID(id))
	if err != nil {
		h.t.Fatal(err)
	}
	if h.wrapHost != nil {
		host = h.wrapHost(id, host)
	}
	st, err := store.Open(store.Config{Dir: dir})
	if err != nil {
		h.t.Fatal(err)
	}
	var oc Origin // untyped nil without an origin
	if withOrigin {
		oc = h.originClient()
	}
	node := NewNode(host, nil)
	cfg := Config{Content: h.content, Store: st, Origin: oc, Rand: rand.New(rand.NewPCG(uint64(len(h.peers)), 9)), OnDemand: h.onDemand, Trust: trust}
	if h.configure != nil {
		h.configure(id, &cfg)
	}
	if trust != nil {
		node.UseTrust(trust)
	}
	sess := NewSession(host.ID(), cfg)
	node.Add(sess)
	ctx, cancel := context.WithCancel(h.ctx)
	p := &hpeer{node: node, sess: sess, store: st, cancel: cancel, stopped: make(chan struct{})}
	sess.Begin(ctx)
	go func() {
		sess.Run(ctx)
		host.Close()
		st.Close()
		close(p.stopped)
	}()
	// Stopped before its store's directory is removed (cleanups run last
	// registered first): a peer still storing chunks would leave files
	// behind and fail the test's cleanup.
	h.t.Cleanup(p.stop)
	h.mu.Lock()
	others := append([]*hpeer(nil), h.peers...)
	extra := append([]netx.PeerID(nil), h.extra...)
	h.peers = append(h.peers, p)
	h.mu.Unlock()
	for _, id := range extra {
		node.Connect(ctx, sess, id, nil)
	}
	for _, o := range others {
		select {
		case <-o.stopped:
			continue
		default:
		}
		node.Connect(ctx, sess, o.node.ID(), nil)
	}
	return p
}

// alsoDial makes every peer added from now on connect to id as well: a host
// on h.net that is not a harness peer (a misbehaving one, say).
func (h *harness) alsoDial(id netx.PeerID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.extra = append(h.extra, id)
}

func (p *hpeer) stop() {
	p.cancel()
	<-p.stopped
}

// waitAll waits until every given peer has the whole content.
func (h *harness) waitAll(peers []*hpeer, limit time.Duration) {
	h.t.Helper()
	deadline := time.After(limit)
	for i, p := range peers {
		select {
		case <-p.sess.Done():
		case <-deadline:
			h.t.Fatalf("peer %d of %d incomplete after %v: %+v", i, len(peers), limit, p.sess.Stats())
		}
	}
}

// checkBytes reassembles every file from a peer's store and compares.
func (h *harness) checkBytes(p *hpeer) {
	h.t.Helper()
	m := h.content.Manifest
	for fi, f := range m.Files {
		var got []byte
		for k := range f.Chunks {
			b, err := p.store.Get(h.content.Hash(h.content.FileChunk(fi, int(k))))
			if err != nil {
				h.t.Fatalf("%s chunk %d: %v", f.Path, k, err)
			}
			got = append(got, b...)
		}
		if !bytes.Equal(got, h.data[f.Path]) {
			h.t.Fatalf("%s differs after the swarm", f.Path)
		}
	}
}

var _ = core.MinChunkSize
