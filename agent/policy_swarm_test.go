package agent

import (
	"context"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/control"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/origin"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/tracker"
)

// policyTracker runs a real tracker on loopback that takes the test
// operator's policies.
func policyTracker(t *testing.T) (*tracker.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := tracker.New(tracker.Config{Interval: 200 * time.Millisecond, AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1,
		OperatorKeys: []manifest.PublicKey{manifest.PublicOf(operatorKey)}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return srv, "http://" + ln.Addr().String()
}

// libp2pPolicyPeer is a peer on a real libp2p host on loopback obeying the
// test operator.
func libp2pPolicyPeer(t *testing.T, ctx context.Context, fx *fixture, originURL, trackerURL string, cfg PeerConfig) *Peer {
	t.Helper()
	h, err := netx.NewLibp2pHost(ctx, netx.Libp2pConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.CacheDir, cfg.Origin, cfg.Tracker, cfg.Host = t.TempDir(), originURL, trackerURL, h
	cfg.Trust = manifest.NewKeySet(manifest.PublicOf(fx.key))
	cfg.OperatorKeys = operatorKeys()
	cfg.AnnounceInterval = 200 * time.Millisecond
	cfg.RevocationPoll = time.Hour
	if cfg.MeteredProbe == nil {
		cfg.MeteredProbe = func(context.Context) (bool, error) { return false, nil }
	}
	cfg.PowerSupplyDir = t.TempDir()
	p, err := NewPeer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestMeteredPeerUploadsNothing: under a policy saying metered peers are
// leech-only, a peer told it is metered fetches from its swarm but sends
// no byte to it, and the other peer still completes (from the seed and the
// origin). The policy reaches the peers from the tracker.
func TestMeteredPeerUploadsNothing(t *testing.T) {
	fx := publishTree(t, "metered", 71, map[string]int{"big.bin": 64 * testChunk})
	// A slow origin for the two leechers, so they fetch from peers.
	slow, err := origin.New(origin.Config{Dir: fx.layoutDir, UploadLimit: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	slowSrv := httptest.NewServer(slow.Handler())
	t.Cleanup(slowSrv.Close)
	trk, trackerURL := policyTracker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := trk.SetPolicy(ctx, signedPolicy(t, operatorKey, 1, control.Rule{Metered: control.LeechOnly})); err != nil {
		t.Fatal(err)
	}
	seed := libp2pPolicyPeer(t, ctx, fx, fx.url, trackerURL, PeerConfig{})
	metered := libp2pPolicyPeer(t, ctx, fx, slowSrv.URL, trackerURL, PeerConfig{Metered: ToggleYes})
	other := libp2pPolicyPeer(t, ctx, fx, slowSrv.URL, trackerURL, PeerConfig{})
	// The long poll brings the policy before any swarm is joined.
	waitFor(t, "the policy from the tracker's long poll", func() bool {
		return metered.PolicyStatus().Serial == 1 && other.PolicyStatus().Serial == 1
	})
	if st := metered.PolicyStatus(); st.P2P != control.LeechOnly || !st.Metered || st.Source != "tracker" {
		t.Fatalf("metered peer's policy status %+v: want leech-only, metered, from the tracker", st)
	}
	if st := other.PolicyStatus(); st.P2P != control.On {
		t.Fatalf("unmetered peer's policy status %+v: want on", st)
	}
	s, err := seed.JoinAll(ctx, fx.id)
	if err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	ms, err := metered.JoinAll(ctx, fx.id)
	if err != nil {
		t.Fatal(err)
	}
	if ms.Mode() != swarm.ModeLeechOnly {
		t.Fatalf("metered peer's session started in mode %v, want leech-only", ms.Mode())
	}
	osess, err := other.JoinAll(ctx, fx.id)
	if err != nil {
		t.Fatal(err)
	}
	for name, sess := range map[string]*swarm.Session{"metered": ms, "other": osess} {
		select {
		case <-sess.Done():
		case <-ctx.Done():
			t.Fatalf("%s peer did not complete: %+v", name, sess.Stats())
		}
	}
	m, o := ms.Stats(), osess.Stats()
	if m.BytesFromPeers == 0 {
		t.Fatalf("the metered peer fetched nothing from peers (%+v): leech-only still fetches", m)
	}
	if m.BytesUploaded != 0 {
		t.Fatalf("the metered peer uploaded %d bytes under a leech-only policy", m.BytesUploaded)
	}
	if o.BytesFromPeers == 0 {
		t.Fatalf("the other peer fetched nothing from peers: %+v", o)
	}
	if sw := metered.Status().Swarms[0]; sw.Mode != "leech-only" || len(sw.ModeWhy) == 0 {
		t.Fatalf("metered peer's swarm status: mode %q why %q", sw.Mode, sw.ModeWhy)
	}
}

// TestPolicySpreadsByGossip: only peer A talks to a tracker; B and C have
// none and are connected to A. A kill switch set on the tracker reaches A
// by its long poll, then B and C by gossip, and C's swarm goes off; p2p on
// again comes the same way. (A chain A–B–C is not tested: GossipSub
// forwards along its mesh, which its first heartbeats build, so a message
// relayed through a mesh still forming can be lost; peers of a real fleet
// have had their meshes for long, and each republishes what it holds every
// 2 min.)
func TestPolicySpreadsByGossip(t *testing.T) {
	fx := publishTree(t, "pgossip", 72, map[string]int{"a.bin": 2 * testChunk})
	trk, trackerURL := policyTracker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := libp2pPolicyPeer(t, ctx, fx, fx.url, trackerURL, PeerConfig{})
	b := libp2pPolicyPeer(t, ctx, fx, fx.url, "", PeerConfig{})
	c := libp2pPolicyPeer(t, ctx, fx, fx.url, "", PeerConfig{})
	ha, _ := netx.Libp2p(a.host)
	hb, _ := netx.Libp2p(b.host)
	hc, _ := netx.Libp2p(c.host)
	if err := ha.Connect(ctx, peerAddrInfo(hb)); err != nil {
		t.Fatal(err)
	}
	if err := hc.Connect(ctx, peerAddrInfo(ha)); err != nil {
		t.Fatal(err)
	}
	cs, err := c.Join(ctx, fx.id)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the policy topic's peers", func() bool {
		return a.gossip().TopicPeers(PolicyTopic) >= 2 && b.gossip().TopicPeers(PolicyTopic) >= 1 && c.gossip().TopicPeers(PolicyTopic) >= 1
	})
	if _, err := trk.SetPolicy(ctx, signedPolicy(t, operatorKey, 1, control.Rule{P2P: control.Off})); err != nil {
		t.Fatal(err)
	}
	// The serial shows as soon as the policy is taken; the sessions switch
	// right after.
	waitFor(t, "the policy at B and C by gossip, C's swarm off", func() bool {
		return b.PolicyStatus().Serial == 1 && c.PolicyStatus().Serial == 1 && cs.Mode() == swarm.ModeOff
	})
	if st := b.PolicyStatus(); st.Serial != 1 || st.Source != "gossip" {
		t.Fatalf("B: %+v, want serial 1 by gossip", st)
	}
	if st := c.PolicyStatus(); st.Source != "gossip" || st.P2P != control.Off {
		t.Fatalf("C: %+v, want p2p off by gossip", st)
	}
	if cs.Mode() != swarm.ModeOff {
		t.Fatalf("C's swarm in mode %v after the kill switch, want off", cs.Mode())
	}
	// And back on the same way.
	if _, err := trk.SetPolicy(ctx, signedPolicy(t, operatorKey, 2, control.Rule{P2P: control.On})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "serial 2 at B and C, C's swarm on", func() bool {
		return b.PolicyStatus().Serial == 2 && c.PolicyStatus().Serial == 2 && cs.Mode() == swarm.ModeOn
	})
	if cs.Mode() != swarm.ModeOn {
		t.Fatalf("C's swarm in mode %v after p2p on, want on", cs.Mode())
	}
}
