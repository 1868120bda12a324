package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/store"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/wire"
)

// gossipRig is a swarm of in-process libp2p hosts on loopback, each with a
// session of one content, its own GossipSub and the availability gossip,
// connected in an explicit sparse topology. Peer 0 alone holds chunk rare.
type gossipRig struct {
	hosts []netx.Host
	nodes []*swarm.Node
	sess  []*swarm.Session
	gsp   []*live.Gossip
	bytes []*rpcBytes
	rare  int
	chunk int
	start time.Time // when the gossip started
	t0    time.Time // when the rig began
	ctx   context.Context
	wg    sync.WaitGroup
}

// rpcBytes counts the bytes of GossipSub RPCs a host sends and receives
// (their protobuf size: what the gossip layer puts on its streams).
type rpcBytes struct {
	noopTracer
	sent, recv atomic.Int64
	msgs, ctrl atomic.Int64 // messages carried (sent and received), bytes of control parts
}

func (b *rpcBytes) count(rpc *pubsub.RPC) {
	b.msgs.Add(int64(len(rpc.Publish)))
	if rpc.Control != nil {
		b.ctrl.Add(int64(proto.Size(rpc.Control)))
	}
}

func (b *rpcBytes) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	b.sent.Add(int64(proto.Size(&rpc.RPC)))
	b.count(rpc)
}

func (b *rpcBytes) RecvRPC(rpc *pubsub.RPC) {
	b.recv.Add(int64(proto.Size(&rpc.RPC)))
	b.count(rpc)
}

// sparseLinks is a ring where each peer links to the next two and the one
// seven ahead: 6 links each (at most 8), diameter 4 for 30 peers.
func sparseLinks(n int) [][2]int {
	var out [][2]int
	for i := range n {
		for _, d := range []int{1, 2, 7} {
			out = append(out, [2]int{i, (i + d) % n})
		}
	}
	return out
}

func newGossipRig(t testing.TB, n int, interval time.Duration) *gossipRig {
	t.Helper()
	fx := publishTree(t, "avail", 11, map[string]int{"f.bin": 32 * testChunk})
	f := fx.m.Files[0]
	lb, err := os.ReadFile(filepath.Join(fx.layoutDir, "hashes", f.Root.String()))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := manifest.ParseHashLayer(f, lb)
	if err != nil {
		t.Fatal(err)
	}
	c, err := swarm.NewContent(fx.id, fx.m, []manifest.HashLayer{layer})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(fx.src, "f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &gossipRig{rare: 17, chunk: testChunk, ctx: ctx, t0: time.Now()}
	t.Cleanup(func() {
		cancel()
		r.wg.Wait()
		for _, g := range r.gsp {
			g.Wait()
		}
		for _, h := range r.hosts {
			h.Close()
		}
	})
	for i := range n {
		h, err := netx.NewLibp2pHost(ctx, netx.Libp2pConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			t.Fatal(err)
		}
		r.hosts = append(r.hosts, h)
		st, err := store.Open(store.Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		// Peer 0 holds the rare chunk; the others a third of the rest
		// each, as peers part-way through a download do, so every peer
		// has something to tell.
		for k := range c.Len() {
			if (i == 0 && k == r.rare) || (i > 0 && k != r.rare && (k+i)%3 == 0) {
				if err := st.Put(c.Hash(k), data[k*testChunk:(k+1)*testChunk]); err != nil {
					t.Fatal(err)
				}
			}
		}
		node := swarm.NewNode(h, nil)
		s := swarm.NewSession(h.ID(), swarm.Config{Content: c, Store: st, OnDemand: true, MaxPeers: 8})
		node.Add(s)
		s.Begin(ctx)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			s.Run(ctx)
		}()
		lh, _ := netx.Libp2p(h)
		b := &rpcBytes{}
		g, err := live.NewGossip(ctx, lh, nil, pubsub.WithRawTracer(b))
		if err != nil {
			t.Fatal(err)
		}
		r.nodes, r.sess, r.gsp, r.bytes = append(r.nodes, node), append(r.sess, s), append(r.gsp, g), append(r.bytes, b)
	}
	for _, l := range sparseLinks(n) {
		a, b := l[0], l[1]
		if err := r.nodes[a].Connect(ctx, r.sess[a], r.hosts[b].ID(), r.hosts[b].Addrs()); err != nil {
			t.Fatalf("link %d-%d: %v", a, b, err)
		}
	}
	r.start = time.Now()
	for i := range n {
		if got := len(r.sess[i].Peers()); got > 8 {
			t.Fatalf("peer %d has %d connections, want at most 8", i, got)
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			err := runAvailGossip(ctx, r.gsp[i], r.sess[i], availConfig{
				Interval: interval,
				Addrs:    r.hosts[i].Addrs,
				Dial: func(ctx context.Context, id netx.PeerID, addrs []string) error {
					return r.nodes[i].Connect(ctx, r.sess[i], id, addrs)
				},
			})
			if err != nil {
				t.Errorf("peer %d: %v", i, err)
			}
		}()
	}
	return r
}

// knowAll waits until every peer knows a holder of the rare chunk and
// returns how long each took from the gossip's start; it fails the test at
// the deadline.
func (r *gossipRig) knowAll(t testing.TB, deadline time.Duration) []time.Duration {
	t.Helper()
	took := make([]time.Duration, len(r.sess))
	left := len(r.sess)
	end := time.Now().Add(deadline)
	for left > 0 {
		for i, s := range r.sess {
			if took[i] == 0 && s.KnowsHolder(r.rare) {
				took[i] = max(time.Since(r.start), time.Nanosecond)
				left--
			}
		}
		if left > 0 && time.Now().After(end) {
			var lost []int
			for i := range took {
				if took[i] == 0 {
					lost = append(lost, i)
				}
			}
			t.Fatalf("after %v, peers %v know no holder of chunk %d", deadline, lost, r.rare)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return took
}

// TestGossipTellsEveryPeerWhereTheRareChunkIs: in a 30-peer swarm where each
// peer has at most 8 connections, every peer learns that peer 0 holds a
// chunk nobody else has, and a peer far from it that wants the chunk dials
// it and fetches it from it, with no origin.
func TestGossipTellsEveryPeerWhereTheRareChunkIs(t *testing.T) {
	r := newGossipRig(t, 30, DefaultGossipInterval)
	took := r.knowAll(t, 2*time.Minute)
	t.Logf("rig built in %v; every peer knew a holder %v after the gossip started", r.start.Sub(r.t0), slices.Max(took))
	far := 15 // four hops from peer 0
	if slices.Contains(r.sess[far].Peers(), r.hosts[0].ID()) {
		t.Fatalf("peer %d is connected to the holder from the start", far)
	}
	in := r.sess[far].WantFromPeers(swarm.Range{From: r.rare, To: r.rare + 1})
	defer in.Release()
	ctx, cancel := context.WithTimeout(r.ctx, 2*time.Minute)
	defer cancel()
	if err := r.sess[far].WaitChunk(ctx, r.rare); err != nil {
		t.Fatalf("peer %d never got chunk %d: %v (connected to %d peers)", far, r.rare, err, len(r.sess[far].Peers()))
	}
	t.Logf("peer %d had the rare chunk %v after the gossip started", far, time.Since(r.start))
	if !slices.Contains(r.sess[far].Peers(), r.hosts[0].ID()) {
		t.Errorf("peer %d got the rare chunk without dialling its holder", far)
	}
	if st := r.sess[far].Stats(); st.BytesFromOrigin != 0 || st.BytesFromPeers < int64(r.chunk) {
		t.Errorf("peer %d: %d bytes from origin, %d from peers; want 0 and at least %d", far, st.BytesFromOrigin, st.BytesFromPeers, r.chunk)
	}
}

// TestGossipRejectsInvalidSummaries: the topic's validator refuses what
// is malformed, oversized, for another content or with addresses nobody
// can dial, and ignores an older summary from the same author; none of
// them changes what the session knows.
func TestGossipRejectsInvalidSummaries(t *testing.T) {
	fx := publishTree(t, "avail-check", 12, map[string]int{"f.bin": 8 * testChunk})
	f := fx.m.Files[0]
	lb, err := os.ReadFile(filepath.Join(fx.layoutDir, "hashes", f.Root.String()))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := manifest.ParseHashLayer(f, lb)
	if err != nil {
		t.Fatal(err)
	}
	c, err := swarm.NewContent(fx.id, fx.m, []manifest.HashLayer{layer})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := swarm.NewSession("me", swarm.Config{Content: c, Store: st})
	good := &wire.Summary{Content: c.ID, Chunks: c.Len(), Seq: 10, Slots: 1, Addrs: netx.PackAddrs([]string{"/ip4/127.0.0.1/tcp/4001"}), Ranges: []wire.Run{{From: 3, To: 4}}}
	enc := func(sum wire.Summary) []byte {
		b, err := wire.MarshalSummary(&sum)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other, short, badAddr, old, later := *good, *good, *good, *good, *good
	other.Content[0] ^= 1
	other.Ranges = []wire.Run{{From: 5, To: 6}}
	short.Chunks, short.Ranges = 7, []wire.Run{{From: 5, To: 6}}
	badAddr.Addrs, badAddr.Ranges = []string{"not an address"}, []wire.Run{{From: 5, To: 6}}
	old.Seq, old.Ranges = 9, []wire.Run{{From: 5, To: 6}}
	later.Seq = 11
	for _, tc := range []struct {
		name string
		data []byte
		want live.Verdict
	}{
		{"valid", enc(*good), live.Accept},
		{"garbage", []byte("SHAV not really"), live.Reject},
		{"oversized", make([]byte, wire.MaxSummary+1), live.Reject},
		{"other content", enc(other), live.Reject},
		{"other chunk count", enc(short), live.Reject},
		{"bad address", enc(badAddr), live.Reject},
		{"older", enc(old), live.Ignore},
		{"replayed", enc(*good), live.Ignore},
		{"newer", enc(later), live.Accept},
	} {
		if got := availCheck(s, []string{"/ip4/127.0.0.1/tcp/1"}, "12D3KooWauthor", tc.data); got != tc.want {
			t.Errorf("%s: verdict %v, want %v", tc.name, got, tc.want)
		}
	}
	if !s.KnowsHolder(3) || s.KnowsHolder(5) {
		t.Errorf("KnowsHolder(3) = %v, KnowsHolder(5) = %v; want true, false (only valid summaries count)", s.KnowsHolder(3), s.KnowsHolder(5))
	}
}

// noopTracer implements pubsub.RawTracer doing nothing; embed it and
// override what you count.
type noopTracer struct{}

func (noopTracer) AddPeer(peer.ID, protocol.ID)                         {}
func (noopTracer) RemovePeer(peer.ID)                                   {}
func (noopTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (noopTracer) OnClosedOutboundStream(peer.ID)                       {}
func (noopTracer) Join(string)                                          {}
func (noopTracer) Leave(string)                                         {}
func (noopTracer) Graft(peer.ID, string)                                {}
func (noopTracer) Prune(peer.ID, string)                                {}
func (noopTracer) ValidateMessage(*pubsub.Message)                      {}
func (noopTracer) DeliverMessage(*pubsub.Message)                       {}
func (noopTracer) RejectMessage(*pubsub.Message, string)                {}
func (noopTracer) DuplicateMessage(*pubsub.Message)                     {}
func (noopTracer) ThrottlePeer(peer.ID)                                 {}
func (noopTracer) RecvRPC(*pubsub.RPC)                                  {}
func (noopTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (noopTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (noopTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (noopTracer) UndeliverableMessage(*pubsub.Message)                 {}

// BenchmarkGossipAvailability measures, in the 30-peer sparse swarm of
// TestGossipTellsEveryPeerWhereTheRareChunkIs, how long until every peer
// knows a holder of the chunk only peer 0 has (median and slowest peer,
// from the moment the gossip starts), and the gossip's bytes per peer per
// minute once settled (pubsub RPCs sent plus received, anti-entropy every
// DefaultGossipInterval). Run it with -benchtime=3x; SHOAL_GOSSIP_WINDOW
// sets the settled window (default 1m).
func BenchmarkGossipAvailability(b *testing.B) {
	window := time.Minute
	if v := os.Getenv("SHOAL_GOSSIP_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("SHOAL_GOSSIP_WINDOW %q: %v", v, err)
		}
		window = d
	}
	var medians, slowest, settled, joining []float64
	for range b.N {
		r := newGossipRig(b, 30, DefaultGossipInterval)
		took := r.knowAll(b, 2*time.Minute)
		slices.Sort(took)
		medians = append(medians, took[len(took)/2].Seconds())
		slowest = append(slowest, took[len(took)-1].Seconds())
		total := func() int64 {
			var n int64
			for _, c := range r.bytes {
				n += c.sent.Load() + c.recv.Load()
			}
			return n
		}
		joining = append(joining, float64(total())/float64(len(r.bytes)))
		sum := func(f func(*rpcBytes) int64) int64 {
			var n int64
			for _, c := range r.bytes {
				n += f(c)
			}
			return n
		}
		msgs := func(c *rpcBytes) int64 { return c.msgs.Load() }
		ctrl := func(c *rpcBytes) int64 { return c.ctrl.Load() }
		before, m0, c0, t0 := total(), sum(msgs), sum(ctrl), time.Now()
		time.Sleep(window)
		mins := time.Since(t0).Minutes()
		perMin := float64(total()-before) / float64(len(r.bytes)) / mins
		b.Logf("settled, per peer per minute: %.0f messages sent or received, %.0f B of control (IHAVE, IWANT, GRAFT, PRUNE, IDONTWANT)",
			float64(sum(msgs)-m0)/float64(len(r.bytes))/mins, float64(sum(ctrl)-c0)/float64(len(r.bytes))/mins)
		settled = append(settled, perMin)
		b.Logf("run: median %.2fs, slowest %.2fs, %0.f B/peer while joining, %.0f B/peer/min settled", took[len(took)/2].Seconds(), took[len(took)-1].Seconds(), joining[len(joining)-1], perMin)
	}
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(med(medians), "s-median-know")
	b.ReportMetric(med(slowest), "s-all-know")
	b.ReportMetric(med(joining), "B/peer-join")
	b.ReportMetric(med(settled), "B/peer/min")
}
