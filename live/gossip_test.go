package live

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
)

func newLibp2p(t *testing.T, ctx context.Context) host.Host {
	t.Helper()
	h, err := netx.NewLibp2pHost(ctx, netx.Libp2pConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	lh, ok := netx.Libp2p(h)
	if !ok {
		t.Fatal("netx.Libp2p: no libp2p host behind a libp2p Host")
	}
	return lh
}

func connect(t *testing.T, ctx context.Context, a, b host.Host) {
	t.Helper()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the test's deadline passes.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestGossipSpreadsOnlyValidNewerUpdates runs three libp2p hosts in a line,
// rogue — b — c: the rogue speaks raw GossipSub with no validation, b and c
// follow the channel. Bad, foreign and old updates from the rogue must stop
// at b; good ones, and updates b learns elsewhere, must reach c through b.
func TestGossipSpreadsOnlyValidNewerUpdates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rogue, hb, hc := newLibp2p(t, ctx), newLibp2p(t, ctx), newLibp2p(t, ctx)
	connect(t, ctx, rogue, hb)
	connect(t, ctx, hc, hb)

	trust := manifest.PublicOf(testKey(1))
	id := manifest.ChannelIDOf(trust, "news")
	follow := func(h host.Host) (*Follower, *Gossip, func() []uint64) {
		g, err := NewGossip(ctx, h, nil)
		if err != nil {
			t.Fatal(err)
		}
		f := NewFollower(FollowerConfig{Channel: id, Trust: trust})
		var mu sync.Mutex
		var seen []uint64
		f.OnUpdate(func(u *manifest.ChannelUpdate, _ []byte) {
			mu.Lock()
			seen = append(seen, u.Seq)
			mu.Unlock()
		})
		if err := g.Follow(ctx, f); err != nil {
			t.Fatal(err)
		}
		return f, g, func() []uint64 { mu.Lock(); defer mu.Unlock(); return slices.Clone(seen) }
	}
	fb, gb, _ := follow(hb)
	fc, gc, seenC := follow(hc)
	if err := gb.Follow(ctx, fb); err == nil {
		t.Fatal("following a channel twice succeeded")
	}
	ps, err := pubsub.NewGossipSub(ctx, rogue, pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(TopicName(id))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topic.Subscribe(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "topic peers", func() bool {
		return len(gb.Peers(id)) == 2 && len(gc.Peers(id)) == 1 && len(topic.ListPeers()) == 1
	})
	seq := func(f *Follower) uint64 {
		if u, _ := f.Latest(); u != nil {
			return u.Seq
		}
		return 0
	}

	// GossipSub forwards only along its mesh, which the first heartbeats
	// build; until then a relayed message can be lost (the origin poll
	// covers that in a real peer). Warm up with good updates until one
	// reaches c through b.
	for s := uint64(1); seq(fc) == 0; s++ {
		if err := topic.Publish(ctx, signedUpdate(t, 1, s)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("no update reached c through b")
		case <-time.After(100 * time.Millisecond):
		}
	}
	warm := len(seenC())

	badSig := signedUpdate(t, 1, 900)
	i := bytes.Index(badSig, []byte(`"signature":"`)) + len(`"signature":"`)
	badSig[i] ^= 'A' ^ 'B'
	for _, b := range [][]byte{badSig, signedUpdate(t, 2, 901), []byte("not an update"), signedUpdate(t, 1, 500)} {
		if err := topic.Publish(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// Messages from one sender arrive in order, so once the good update
	// (500) is everywhere the bad ones have been judged: had either
	// passed, 900 or 901 would be held and 500 refused as stale.
	waitFor(t, ctx, "update 500 at c", func() bool { return seq(fc) == 500 })
	if seq(fb) != 500 {
		t.Fatalf("b holds %d, want 500", seq(fb))
	}

	// b learns 700 from its origin; gossip carries it to c.
	if _, err := fb.Offer(signedUpdate(t, 1, 700)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "update 700 at c", func() bool { return seq(fc) == 700 })

	// An old but validly signed update is dropped at b.
	for _, s := range []uint64{600, 800} {
		if err := topic.Publish(ctx, signedUpdate(t, 1, s)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "update 800 at c", func() bool { return seq(fc) == 800 })
	if got := seenC()[warm:]; !slices.Equal(got, []uint64{500, 700, 800}) {
		t.Fatalf("c accepted %v after the warm-up, want [500 700 800]", got)
	}
}
