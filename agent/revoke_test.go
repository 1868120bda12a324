package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/publish"
)

func peerAddrInfo(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// revokeFixture is a peer that holds a whole content of fx, signed by
// fx.key, fetched from fx's origin, with its audit events collected.
type revokeFixture struct {
	fx     *fixture
	p      *Peer
	trust  *manifest.KeySet
	hashes []core.Hash // the content's chunks

	mu     sync.Mutex
	events []audit.Event // guarded by mu
}

func newRevokeFixture(t *testing.T, extra ...manifest.PublicKey) *revokeFixture {
	t.Helper()
	rf := &revokeFixture{fx: publishTree(t, "rev", 41, map[string]int{"a.bin": 5*testChunk + 7, "b.bin": 3 * testChunk})}
	rf.trust = manifest.NewKeySet(append(extra, manifest.PublicOf(rf.fx.key))...)
	ctx, cancel := context.WithCancel(context.Background())
	h, err := netx.NewMemNetwork().NewHost("")
	if err != nil {
		t.Fatal(err)
	}
	rf.p, err = NewPeer(ctx, PeerConfig{CacheDir: t.TempDir(), Origin: rf.fx.url, Trust: rf.trust, Host: h,
		RevocationPoll: time.Hour, // the test polls by hand: exactly one poll
		Audit:          audit.SinkFunc(func(e audit.Event) { rf.mu.Lock(); rf.events = append(rf.events, e); rf.mu.Unlock() })})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); rf.p.Close() })
	rf.fetchAll(t, rf.fx.id)
	for _, f := range rf.fx.m.Files {
		l, ok := rf.p.cache.cachedLayer(f)
		if !ok {
			t.Fatalf("no hash layer of %s after the fetch", f.Path)
		}
		rf.hashes = append(rf.hashes, l...)
	}
	return rf
}

// fetchAll joins id, fetches all of it and waits until every chunk is held.
func (rf *revokeFixture) fetchAll(t *testing.T, id core.ContentID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := rf.p.JoinAll(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sess.Done():
	case <-ctx.Done():
		t.Fatalf("content %s not fetched: %v", id, ctx.Err())
	}
}

func (rf *revokeFixture) held() int {
	n := 0
	for _, h := range rf.hashes {
		if rf.p.cache.chunks.Has(h) {
			n++
		}
	}
	return n
}

func (rf *revokeFixture) revoked(content string) bool {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	for _, e := range rf.events {
		if e.Kind == audit.KindRevoked && e.Content == content {
			return true
		}
	}
	return false
}

// assertGone checks that the peer left id's swarm, purged it, refuses to
// join it again and answers 410 for it.
func (rf *revokeFixture) assertGone(t *testing.T, id core.ContentID) {
	t.Helper()
	for _, s := range rf.p.Sessions() {
		if s.Content().ID == id {
			t.Fatalf("the session of revoked content %s still runs", id)
		}
	}
	if n := rf.held(); n != 0 {
		t.Fatalf("%d of %d chunks of revoked content %s still in the cache", n, len(rf.hashes), id)
	}
	if rf.p.cache.has(layout.ManifestPath(id)) {
		t.Fatalf("the manifest of revoked content %s is still in the cache", id)
	}
	if _, err := rf.p.Join(context.Background(), id); !errors.Is(err, manifest.ErrRevoked) {
		t.Fatalf("join of revoked content: %v, want manifest.ErrRevoked", err)
	}
	rec := httptest.NewRecorder()
	rf.p.Gateway().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/c/"+id.String()+"/a.bin", nil))
	if rec.Code != http.StatusGone {
		t.Fatalf("gateway answered %d for a revoked content, want 410: %s", rec.Code, rec.Body)
	}
	if !rf.revoked(id.String()) {
		t.Fatalf("no %s audit event for content %s", audit.KindRevoked, id)
	}
}

func TestRevokedContentLeftAndPurgedAfterOnePoll(t *testing.T) {
	rf := newRevokeFixture(t)
	if n := rf.held(); n != len(rf.hashes) {
		t.Fatalf("%d of %d chunks held before the revocation", n, len(rf.hashes))
	}
	if _, _, err := publish.Revoke(publish.RevokeConfig{Key: rf.fx.key, Out: rf.fx.layoutDir, Contents: []core.ContentID{rf.fx.id}}); err != nil {
		t.Fatal(err)
	}
	rf.p.RevocationsNow(context.Background())
	rf.assertGone(t, rf.fx.id)
	// The list is kept: a restarted peer would load it from the cache.
	if !rf.p.cache.has(layout.RevocationPath(manifest.PublicOf(rf.fx.key).String())) {
		t.Fatal("the revocation list was not saved in the cache")
	}
}

func TestRevokedKeyStopsItsContentsNotTheNewKeys(t *testing.T) {
	k2 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, 32))
	rf := newRevokeFixture(t, manifest.PublicOf(k2))
	// The publisher rotates: a new content under K2, then K2 revokes K1.
	src := filepath.Join(t.TempDir(), "new")
	genTree(t, src, "new", 43, map[string]int{"c.bin": 2*testChunk + 1})
	res, err := publish.Publish(context.Background(), publish.Config{Key: k2, Out: rf.fx.layoutDir, ChunkSize: testChunk, Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := publish.Revoke(publish.RevokeConfig{Key: k2, Out: rf.fx.layoutDir, Keys: []manifest.PublicKey{manifest.PublicOf(rf.fx.key)}}); err != nil {
		t.Fatal(err)
	}
	rf.p.RevocationsNow(context.Background())
	rf.assertGone(t, rf.fx.id)
	if rf.trust.Trusts(manifest.PublicOf(rf.fx.key)) {
		t.Fatal("the revoked key is still trusted")
	}
	rf.fetchAll(t, res.ID) // K2's content still works
}

func TestRevocationListRefusals(t *testing.T) {
	rf := newRevokeFixture(t)
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	// A list by an untrusted key, planted under the trusted key's path,
	// changes nothing.
	r, path, err := publish.Revoke(publish.RevokeConfig{Key: other, Out: t.TempDir(), Contents: []core.ContentID{rf.fx.id}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if ok, err := rf.p.revs.offer(context.Background(), b, "test"); ok || !errors.Is(err, manifest.ErrUntrusted) {
		t.Fatalf("a list by an untrusted key (seq %d): taken %v, %v", r.Seq, ok, err)
	}
	// A trusted list, then an older one: the older is ignored.
	dir := t.TempDir()
	publish.Revoke(publish.RevokeConfig{Key: rf.fx.key, Out: dir})
	p1 := filepath.Join(dir, layout.RevocationPath(manifest.PublicOf(rf.fx.key).String()))
	first, _ := os.ReadFile(p1)
	publish.Revoke(publish.RevokeConfig{Key: rf.fx.key, Out: dir})
	second, _ := os.ReadFile(p1)
	if ok, err := rf.p.revs.offer(context.Background(), second, "test"); !ok || err != nil {
		t.Fatalf("list 2: taken %v, %v", ok, err)
	}
	if ok, err := rf.p.revs.offer(context.Background(), first, "test"); ok || err != nil {
		t.Fatalf("list 1 after list 2: taken %v, %v; want ignored", ok, err)
	}
	if n := rf.held(); n != len(rf.hashes) {
		t.Fatalf("lists naming nothing purged %d chunks", len(rf.hashes)-n)
	}
}

// TestRevocationSpreadsByGossip: peer A learns a list from the origin;
// peer B, whose origin never has it and who never polls, gets it from A
// over GossipSub. B's validator drops garbage and lists it cannot trust.
func TestRevocationSpreadsByGossip(t *testing.T) {
	fx := publishTree(t, "gsp", 45, map[string]int{"a.bin": 2 * testChunk})
	empty := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(empty.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	newPeer := func(originURL string) *Peer {
		h, err := netx.NewLibp2pHost(ctx, netx.Libp2pConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewPeer(ctx, PeerConfig{CacheDir: t.TempDir(), Origin: originURL, Trust: manifest.NewKeySet(manifest.PublicOf(fx.key)), Host: h, RevocationPoll: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	a, b := newPeer(fx.url), newPeer(empty.URL)
	// Both subscribe as their poll loops start; connect them.
	ha, _ := netx.Libp2p(a.host)
	hb, _ := netx.Libp2p(b.host)
	if err := ha.Connect(ctx, peerAddrInfo(hb)); err != nil {
		t.Fatal(err)
	}
	_, path, err := publish.Revoke(publish.RevokeConfig{Key: fx.key, Out: fx.layoutDir, Contents: []core.ContentID{fx.id}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	a.RevocationsNow(ctx)
	if a.revs.contentRevoked(fx.id) == nil {
		t.Fatal("A did not take the list from the origin")
	}
	// The first publish may precede the subscriptions' exchange: A sends
	// it again until B has it (as a later poll would not: it is unchanged).
	for b.revs.contentRevoked(fx.id) == nil {
		a.revs.mu.Lock()
		pub := a.revs.publish
		a.revs.mu.Unlock()
		if pub != nil {
			pub(raw)
		}
		select {
		case <-ctx.Done():
			t.Fatal("B never got the list by gossip")
		case <-time.After(200 * time.Millisecond):
		}
	}
	if _, err := b.Join(ctx, fx.id); !errors.Is(err, manifest.ErrRevoked) {
		t.Fatalf("B joined content revoked by gossip: %v", err)
	}
	if v := b.revs.check([]byte(`{"version":1}`)); v != live.Reject {
		t.Fatalf("garbage: verdict %v, want Reject", v)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	_, p2, err := publish.Revoke(publish.RevokeConfig{Key: other, Out: t.TempDir(), Contents: []core.ContentID{fx.id}})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := os.ReadFile(p2)
	if v := b.revs.check(foreign); v != live.Ignore {
		t.Fatalf("a list by a key B does not trust: verdict %v, want Ignore", v)
	}
	if v := b.revs.check(raw); v != live.Accept {
		t.Fatalf("the list B holds: verdict %v, want Accept (so it is passed on)", v)
	}
}

// TestTrustFileRereadStopsJoins: a key removed from the trust file of a
// running peer stops new joins of its contents, and the swarms it had are
// left; its chunks stay (removal is not revocation).
func TestTrustFileRereadStopsJoins(t *testing.T) {
	fx := publishTree(t, "tf", 47, map[string]int{"a.bin": 2 * testChunk})
	k1 := manifest.PublicOf(fx.key)
	file := filepath.Join(t.TempDir(), "trusted")
	if err := os.WriteFile(file, []byte(k1.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := netx.NewMemNetwork().NewHost("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPeer(ctx, PeerConfig{CacheDir: t.TempDir(), Origin: fx.url, TrustFile: file, Host: h, RevocationPoll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); p.Close() }()
	if _, err := p.Join(ctx, fx.id); err != nil {
		t.Fatalf("join under the trust file's key: %v", err)
	}
	if err := os.WriteFile(file, []byte("# the old key is gone\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for p.cfg.Trust.Trusts(k1) || len(p.Sessions()) != 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("trust file not re-read: trusted %q, %d sessions", p.cfg.Trust, len(p.Sessions()))
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := p.Join(ctx, fx.id); !errors.Is(err, manifest.ErrUntrusted) {
		t.Fatalf("join after the key left the trust file: %v, want manifest.ErrUntrusted", err)
	}
	if _, err := NewPeer(ctx, PeerConfig{CacheDir: t.TempDir(), Origin: fx.url, TrustFile: filepath.Join(t.TempDir(), "missing")}); !errors.Is(err, ErrBadInput) {
		t.Fatalf("a missing trust file: %v, want ErrBadInput", err)
	}
}
