//go:build e2e

// End-to-end test of bans and reports with real processes: a `shoal peer`
// that meets a liar (a libp2p host in the test process that speaks the wire
// protocol and serves wrong bytes, announced to the real `shoal tracker`)
// bans it, reports it to the tracker, still serves the file byte-identical,
// and after a restart on the same cache neither dials nor answers it.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/wire"
)

// repLiar is a peer that claims every chunk and answers every request with
// bytes of the right length and the wrong content.
type repLiar struct {
	host       netx.Host
	content    core.ContentID
	handshakes atomic.Int64 // handshakes it received for the content
	lies       atomic.Int64 // DATA frames it sent
}

func startLiar(t *testing.T, ctx context.Context, content core.ContentID) *repLiar {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := netx.NewLibp2pHost(ctx, netx.Libp2pConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	l := &repLiar{host: h, content: content}
	h.SetStreamHandler(wire.ProtocolID, l.serve)
	return l
}

func (l *repLiar) serve(st netx.Stream) {
	defer st.Reset()
	rd := wire.NewReader(st, wire.MaxFrame)
	m, err := rd.Next()
	hs, ok := m.(*wire.Handshake)
	if err != nil || !ok || hs.Content != l.content {
		return
	}
	l.handshakes.Add(1)
	bits := wire.NewBitfield(hs.Bits.Len())
	bits.SetAll()
	if wire.WriteMessage(st, &wire.Handshake{Content: l.content, Flags: wire.FlagSeeder, Client: "liar/1", Bits: bits}) != nil ||
		wire.WriteMessage(st, &wire.Unchoke{}) != nil {
		return
	}
	for {
		m, err := rd.Next()
		if err != nil {
			return
		}
		if req, ok := m.(*wire.Request); ok {
			p := make([]byte, req.Length)
			for k := range p {
				p[k] = byte(req.Index) ^ 0x5a
			}
			if wire.WriteMessage(st, &wire.Data{Index: req.Index, Offset: req.Offset, Payload: p}) != nil {
				return
			}
			l.lies.Add(1)
		}
	}
}

// announce keeps the liar listed with the tracker as a seed until the test
// ends, and passes each answer's peers to seen.
func (l *repLiar) announce(t *testing.T, trackerURL string, seen func([]discovery.PeerInfo)) {
	t.Helper()
	tc, err := discovery.NewTrackerClient(trackerURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		ev := discovery.EventStarted
		for ctx.Err() == nil {
			// Signed with the liar's own key, as every announce must be:
			// the liar is a real libp2p identity, only its bytes lie.
			req := discovery.AnnounceRequest{Content: l.content, Peer: string(l.host.ID()), Addrs: l.host.Addrs(), Event: ev}
			signer, ok := l.host.(discovery.Signer)
			if !ok {
				t.Error("the liar's host cannot sign announces")
				return
			}
			if err := req.Sign(signer, time.Now()); err != nil {
				t.Error(err)
				return
			}
			resp, err := tc.Announce(ctx, req)
			if err == nil {
				ev = discovery.EventNone
				seen(resp.Peers)
			}
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
}

// tryHandshake dials p from the liar and sends a handshake; it reports
// whether p answered with one.
func (l *repLiar) tryHandshake(ctx context.Context, p discovery.PeerInfo, chunks int) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := l.host.NewStream(ctx, netx.PeerID(p.Peer), p.Addrs, wire.ProtocolID)
	if err != nil {
		return false
	}
	defer st.Reset()
	bits := wire.NewBitfield(chunks)
	bits.SetAll()
	if wire.WriteMessage(st, &wire.Handshake{Content: l.content, Client: "liar/1", Bits: bits}) != nil {
		return false
	}
	m, err := wire.NewReader(st, wire.MaxFrame).Next()
	_, ok := m.(*wire.Handshake)
	return err == nil && ok
}

// metricValue reads one unlabelled sample from a /metrics page.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := fxClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var v float64
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			fmt.Sscan(f[1], &v)
			return v
		}
	}
	return -1
}

func TestBinaryLiarBannedAcrossRestart(t *testing.T) {
	const size = 3 << 20
	r := newFxRig(t)
	c := r.publish("liar", fxFile{"app.bin", size, 1101})
	r.startOrigin()
	r.startTracker()
	id, err := core.ParseContentID(c.id)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	liar := startLiar(t, ctx, id)
	listed := &listings{seen: map[string]int{}, infos: map[string]discovery.PeerInfo{}}
	liar.announce(t, r.trackerURL, listed.add)

	honest := r.startPeer("honest")
	wantWhole(t, "GET through the honest peer", fxDo(t, http.MethodGet, honest.gw+"/c/"+c.id+"/app.bin"), c.files["app.bin"])
	if liar.lies.Load() == 0 {
		t.Fatalf("the liar was never asked for a chunk (%d handshakes): nothing was tested", liar.handshakes.Load())
	}
	bans := filepath.Join(honest.cache, "bans.json")
	liarID := string(liar.host.ID())
	waitFor(t, "liar in the honest peer's ban file", fxDeadline, func() (bool, string) {
		b, err := os.ReadFile(bans)
		return err == nil && strings.Contains(string(b), liarID), fmt.Sprintf("%s: %v", b, err)
	})
	waitFor(t, "report reached the tracker", fxDeadline, func() (bool, string) {
		n := metricValue(t, r.trackerURL+"/metrics", "shoal_tracker_reports_total")
		return n == 1, fmt.Sprintf("shoal_tracker_reports_total %v", n)
	})
	honest.stop(t)

	// Restarted on the same cache: it seeds the file again and learns the
	// liar from the tracker (one report excludes nobody), but neither
	// dials it nor answers it.
	before := liar.handshakes.Load()
	again := r.startPeerCache("honest-again", honest.cache)
	againID := again.status(t).Peer
	var seenAgain discovery.PeerInfo
	waitFor(t, "restarted peer listed by the tracker, twice", fxDeadline, func() (bool, string) {
		n, p := listed.count(againID)
		seenAgain = p
		return n >= 2, fmt.Sprintf("listed %d times", n)
	})
	if liar.tryHandshake(ctx, seenAgain, (size+fxChunk-1)/fxChunk) {
		t.Fatal("the restarted peer answered the banned liar's handshake")
	}
	if n := liar.handshakes.Load() - before; n != 0 {
		t.Fatalf("the restarted peer dialled the banned liar %d times", n)
	}
	wantWhole(t, "GET after the restart", fxDo(t, http.MethodGet, again.gw+"/c/"+c.id+"/app.bin"), c.files["app.bin"])
}

// listings counts, per peer, the tracker answers to the liar that listed it.
type listings struct {
	mu    sync.Mutex
	seen  map[string]int                // guarded by mu
	infos map[string]discovery.PeerInfo // guarded by mu
}

func (a *listings) add(ps []discovery.PeerInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range ps {
		a.seen[p.Peer]++
		a.infos[p.Peer] = p
	}
}

func (a *listings) count(id string) (int, discovery.PeerInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[id], a.infos[id]
}
