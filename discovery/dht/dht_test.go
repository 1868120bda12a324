package dht

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func fullAddr(h host.Host) string {
	return h.Addrs()[0].String() + "/p2p/" + h.ID().String()
}

// TestCIDIsRawSHA256OfManifest guards the documented mapping: the key of a
// content is cidv1(raw, sha2-256 multihash of the content ID).
func TestCIDIsRawSHA256OfManifest(t *testing.T) {
	id := core.ContentID(sha256.Sum256([]byte("a signed manifest")))
	c := CID(id)
	if c.Version() != 1 || c.Type() != 0x55 {
		t.Fatalf("CID %s: version %d codec %#x, want 1 and raw (0x55)", c, c.Version(), c.Type())
	}
	h := []byte(c.Hash())
	if h[0] != 0x12 || h[1] != 32 || string(h[2:]) != string(id[:]) {
		t.Fatalf("multihash %x: want 0x12 0x20 then the content ID %x", h, id[:])
	}
}

func TestParseBootstrapNamesTheBadAddress(t *testing.T) {
	for _, bad := range []string{"nope", "/ip4/127.0.0.1/tcp/1"} {
		_, err := ParseBootstrap([]string{bad})
		if !errors.Is(err, ErrBadBootstrap) || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseBootstrap(%q): %v, want ErrBadBootstrap naming it", bad, err)
		}
	}
	h := newHost(t)
	ais, err := ParseBootstrap([]string{fullAddr(h), fullAddr(h)})
	if err != nil || len(ais) != 1 || ais[0].ID != h.ID() || len(ais[0].Addrs) != 2 {
		t.Fatalf("two addresses of one peer: %v %v, want one peer with both", ais, err)
	}
}

// TestClientsFindEachOtherThroughBootstrap: two client-mode nodes that know
// only a bootstrap server find each other as providers of a content, and
// the DHT speaks Shoal's protocol, not another network's.
func TestClientsFindEachOtherThroughBootstrap(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bh := newHost(t)
	bootDone := make(chan error, 1)
	go func() { bootDone <- RunBootstrap(ctx, bh, Config{}) }()
	cfg := Config{Bootstrap: []string{fullAddr(bh)}, LookupInterval: 200 * time.Millisecond}
	a, b := newHost(t), newHost(t)
	da, err := New(ctx, a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	db, err := New(ctx, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if st := da.Stats(); st.Mode != "client" {
		t.Fatalf("a node without public reachability runs as %q, want client", st.Mode)
	}
	id := core.ContentID(sha256.Sum256([]byte("content")))
	da.Provide(ctx, id)

	var mu sync.Mutex
	var got []discovery.PeerInfo
	fctx, fcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.FindPeers(fctx, id, nil, func(pi discovery.PeerInfo) {
			mu.Lock()
			got = append(got, pi)
			mu.Unlock()
		})
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b found no provider within a minute; a: %+v b: %+v", da.Stats(), db.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	fcancel()
	<-done
	mu.Lock()
	first := got[0]
	mu.Unlock()
	if first.Peer != a.ID().String() || len(first.Addrs) == 0 {
		t.Fatalf("b found %+v, want a (%s) with its addresses", first, a.ID())
	}
	protos, err := bh.Peerstore().SupportsProtocols(a.ID(), protocol.ID("/ipfs/kad/1.0.0"))
	if err == nil && len(protos) > 0 {
		t.Fatalf("a speaks the public DHT protocol: %v", protos)
	}
	if ps, _ := a.Peerstore().SupportsProtocols(bh.ID(), protocol.ID(ProtocolPrefix+"/kad/1.0.0")); len(ps) != 1 {
		t.Fatalf("the bootstrap node does not serve %s/kad/1.0.0", ProtocolPrefix)
	}
	if st := db.Stats(); st.Found == 0 || st.RoutingTable == 0 {
		t.Fatalf("b's stats %+v: want a provider found and a server in the table", st)
	}
	cancel()
	if err := <-bootDone; err != nil {
		t.Fatalf("bootstrap node: %v", err)
	}
}

func TestRecordStoreIsBounded(t *testing.T) {
	ctx := context.Background()
	s := newBoundedStore(2)
	for _, k := range []string{"/a", "/b", "/a"} {
		if err := s.Put(ctx, ds.NewKey(k), []byte("v")); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	if err := s.Put(ctx, ds.NewKey("/c"), []byte("v")); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("third key: %v, want ErrStoreFull", err)
	}
	// Expired records leave in a batch of deletes; they free room.
	b, _ := s.Batch(ctx)
	b.Delete(ctx, ds.NewKey("/a"))
	b.Delete(ctx, ds.NewKey("/never"))
	if err := b.Commit(ctx); err != nil {
		t.Fatalf("batch of deletes: %v", err)
	}
	if err := s.Put(ctx, ds.NewKey("/c"), []byte("v")); err != nil {
		t.Fatalf("put after a delete: %v", err)
	}
	if err := s.Put(ctx, ds.NewKey("/d"), []byte("v")); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("after the batch: %v, want ErrStoreFull", err)
	}
}
