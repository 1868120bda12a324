package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/origin"
	"github.com/shoal-cdn/shoal/tracker"
)

// swarmFixture is a published content behind a (throttled) origin, a real
// tracker on loopback, and peers on an in-memory network.
type swarmFixture struct {
	*fixture
	mem        *netx.MemNetwork
	trackerURL string
	trackerLn  string
	stopTrack  context.CancelFunc
	trackDone  chan struct{}
	track      *tracker.Server // the running tracker
}

func newSwarmFixture(t *testing.T, originRate float64, files map[string]int) *swarmFixture {
	t.Helper()
	fx := publishTree(t, "swarm", 21, files)
	if originRate > 0 {
		srv, err := origin.New(origin.Config{Dir: fx.layoutDir, UploadLimit: originRate})
		if err != nil {
			t.Fatal(err)
		}
		fx.srv = srv
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(hs.Close)
		fx.url = hs.URL
	}
	sf := &swarmFixture{fixture: fx, mem: netx.NewMemNetwork()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sf.trackerLn = ln.Addr().String()
	sf.trackerURL = "http://" + sf.trackerLn
	sf.startTracker(t, ln)
	t.Cleanup(func() { sf.stopTrack(); <-sf.trackDone })
	return sf
}

func (sf *swarmFixture) startTracker(t *testing.T, ln net.Listener) {
	t.Helper()
	if ln == nil {
		var err error
		for range 50 { // the old listener's port may take a moment to free
			if ln, err = net.Listen("tcp", sf.trackerLn); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	sf.stopTrack, sf.trackDone = cancel, make(chan struct{})
	// In-memory hosts hold no key to sign announces with.
	srv := tracker.New(tracker.Config{Interval: 200 * time.Millisecond, AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1})
	sf.track = srv
	go func() {
		defer close(sf.trackDone)
		srv.Serve(ctx, ln)
	}()
}

func (sf *swarmFixture) peer(t *testing.T, ctx context.Context) *Peer {
	t.Helper()
	h, err := sf.mem.NewHost("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPeer(ctx, PeerConfig{
		CacheDir: t.TempDir(), Tracker: sf.trackerURL, Origin: sf.url, Trust: manifest.NewKeySet(manifest.PublicOf(sf.key)),
		Host: h, AnnounceInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestTrackerRestartDoesNotStopTransfers(t *testing.T) {
	const size = 48 * testChunk
	// A slow origin keeps the transfer going while the tracker is away.
	sf := newSwarmFixture(t, 2<<20, map[string]int{"big": size})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var peers []*Peer
	for range 4 {
		p := sf.peer(t, ctx)
		if _, err := p.JoinAll(ctx, sf.id); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
	}
	// Wait until the peers have found each other and started, then take the
	// tracker down.
	waitFor(t, "peers connected and transferring", func() bool {
		for _, p := range peers {
			st := p.Status().Swarms[0]
			if st.Peers < 3 || st.Have == 0 {
				return false
			}
		}
		return true
	})
	sf.stopTrack()
	<-sf.trackDone
	before := totalFromPeers(peers)
	for i, p := range peers {
		s, _ := p.JoinAll(ctx, sf.id)
		select {
		case <-s.Done():
		case <-time.After(2 * time.Minute):
			t.Fatalf("peer %d stalled with the tracker down: %+v", i, p.Status().Swarms[0])
		}
	}
	if after := totalFromPeers(peers); after <= before {
		t.Fatalf("no bytes moved between peers after the tracker stopped (%d before, %d after)", before, after)
	}
	// A restarted tracker (empty state) is repopulated by re-announces, and
	// a newcomer finds the swarm through it.
	sf.startTracker(t, nil)
	// Once the peers have re-announced, so that the newcomer's first
	// announce finds them rather than racing them (on a loaded machine the
	// newcomer could otherwise take everything from the origin first).
	waitFor(t, "the restarted tracker lists the swarm", func() bool {
		sw := sf.track.Swarms()
		return len(sw) == 1 && sw[0].Peers == len(peers)
	})
	late := sf.peer(t, ctx)
	s, err := late.JoinAll(ctx, sf.id)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(2 * time.Minute):
		t.Fatalf("newcomer after tracker restart stalled: %+v", late.Status().Swarms[0])
	}
	if st := late.Status().Swarms[0]; st.BytesFromPeers == 0 {
		t.Fatalf("newcomer got nothing from peers after the restart: %+v", st)
	}
}

func totalFromPeers(peers []*Peer) int64 {
	var n int64
	for _, p := range peers {
		n += p.Status().BytesFromPeers
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGatewayServesContent(t *testing.T) {
	sf := newSwarmFixture(t, 0, map[string]int{"a.bin": 5*testChunk + 123, "d/b.txt": 10})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := sf.peer(t, ctx)
	gw := httptest.NewServer(p.Gateway())
	defer gw.Close()
	want, _ := os.ReadFile(filepath.Join(sf.src, "a.bin"))
	base := fmt.Sprintf("%s/c/%s/", gw.URL, sf.id)

	get := func(path, rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get("a.bin", "")
	if resp.StatusCode != 200 || string(body) != string(want) || resp.Header.Get("Content-Length") != fmt.Sprint(len(want)) {
		t.Fatalf("full GET: %s, %d bytes", resp.Status, len(body))
	}
	for _, tc := range []struct {
		rng        string
		lo, hi     int
		wantStatus int
	}{
		{"bytes=0-99", 0, 100, 206},
		{fmt.Sprintf("bytes=%d-%d", testChunk-10, 2*testChunk+9), testChunk - 10, 2*testChunk + 10, 206},
		{"bytes=-50", len(want) - 50, len(want), 206},
		{fmt.Sprintf("bytes=%d-", len(want)-1), len(want) - 1, len(want), 206},
	} {
		resp, body := get("a.bin", tc.rng)
		if resp.StatusCode != tc.wantStatus || string(body) != string(want[tc.lo:tc.hi]) {
			t.Errorf("Range %s: %s, %d bytes", tc.rng, resp.Status, len(body))
		}
	}
	if resp, _ := get("a.bin", fmt.Sprintf("bytes=%d-", len(want))); resp.StatusCode != 416 {
		t.Errorf("unsatisfiable range: %s", resp.Status)
	}
	if resp, _ := get("nope", ""); resp.StatusCode != 404 {
		t.Errorf("missing file: %s", resp.Status)
	}
	if resp, err := http.Head(base + "d/b.txt"); err != nil || resp.StatusCode != 200 || resp.ContentLength != 10 {
		t.Errorf("HEAD: %v %v", resp, err)
	}
	var st Status
	r2, err := http.Get(gw.URL + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(r2.Body).Decode(&st)
	r2.Body.Close()
	// a.bin's six chunks were served, so they are held (b.txt may still be on its way).
	if len(st.Swarms) != 1 || st.Swarms[0].Have < 6 || st.Swarms[0].BytesFromOrigin < int64(len(want)) || st.Swarms[0].OriginDataReceived < st.Swarms[0].BytesFromOrigin {
		t.Fatalf("status after serving: %+v", st)
	}
	r3, _ := http.Get(gw.URL + "/metrics")
	m, _ := io.ReadAll(r3.Body)
	r3.Body.Close()
	for _, name := range []string{"shoal_peer_bytes_from_origin_total", "shoal_peer_offload_ratio", "shoal_peer_min_availability", "shoal_peer_bans_total", "shoal_peer_have_frames_total", "shoal_peer_haves_total", `shoal_peer_data_received_bytes_total{content="`} {
		if !strings.Contains(string(m), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestGetWithTrackerUsesPeers(t *testing.T) {
	sf := newSwarmFixture(t, 0, map[string]int{"f": 20 * testChunk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seed := sf.peer(t, ctx)
	s, err := seed.JoinAll(ctx, sf.id)
	if err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	egress := sf.srv.BytesServed()
	h, _ := sf.mem.NewHost("")
	out := filepath.Join(t.TempDir(), "f")
	res, err := Get(ctx, GetConfig{
		Origin: sf.url, Trust: manifest.NewKeySet(manifest.PublicOf(sf.key)), Target: sf.id.String(), Out: out, CacheDir: t.TempDir(),
		Tracker: sf.trackerURL, Swarm: PeerConfig{Host: h, AnnounceInterval: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(sf.src, "f"))
	if got, _ := os.ReadFile(out); string(got) != string(want) {
		t.Fatal("swarm get differs")
	}
	if res.FromPeers == 0 {
		t.Fatalf("swarm get took nothing from peers: %+v", res)
	}
	t.Logf("from peers %d, from origin %d, origin served %d more bytes", res.FromPeers, res.FromOrigin, sf.srv.BytesServed()-egress)
}

// TestGatewayUnknownContentIs404: an ID the origin has no manifest for is a
// 404 (not a 502), and costs no tracker announce.
func TestGatewayUnknownContentIs404(t *testing.T) {
	sf := newSwarmFixture(t, 0, map[string]int{"a.bin": 10})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := sf.peer(t, ctx)
	gw := httptest.NewServer(p.Gateway())
	defer gw.Close()
	resp, err := http.Get(gw.URL + "/c/" + strings.Repeat("A", 43) + "/a.bin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown content: %s, want 404", resp.Status)
	}
	if n := len(p.Sessions()); n != 0 {
		t.Fatalf("%d sessions left for an unknown content", n)
	}
}

// A revalidation (If-None-Match with the file's ETag) is answered 304
// before anything is fetched: a cache in front of the gateway asking "still
// the same?" costs no chunk, whatever the peer holds.
func TestGatewayNotModifiedFetchesNothing(t *testing.T) {
	sf := newSwarmFixture(t, 0, map[string]int{"a.bin": 6 * testChunk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := sf.peer(t, ctx)
	gw := httptest.NewServer(p.Gateway())
	defer gw.Close()
	f, _ := sf.m.File("a.bin")
	for _, inm := range []string{`"` + f.Root.String() + `"`, "*", `W/"x", "` + f.Root.String() + `"`} {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/c/%s/a.bin", gw.URL, sf.id), nil)
		req.Header.Set("If-None-Match", inm)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("If-None-Match %s: %s, want 304", inm, resp.Status)
		}
	}
	st := p.Status()
	if len(st.Swarms) != 1 || st.Swarms[0].Have != 0 || st.BytesFromOrigin != 0 {
		t.Fatalf("after three revalidations: %+v; want the content joined, nothing held or fetched", st)
	}
}
