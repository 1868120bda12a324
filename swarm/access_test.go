package swarm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/token"
	"github.com/shoal-cdn/shoal/wire"
)

// syncClock is a manual clock safe for the sessions' goroutines.
type syncClock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func (c *syncClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *syncClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var tokenT0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// tokenWorld is a harness whose peers present tokens issued by the
// harness's publisher key and check each other's.
type tokenWorld struct {
	*harness
	pub    ed25519.PrivateKey
	clock  *syncClock
	tokens sync.Map // peer ID → *atomic.Value holding its current token
	mu     sync.Mutex
	events []audit.Event // guarded by mu
}

func newTokenWorld(t *testing.T, seed uint64, regions ...string) *tokenWorld {
	h := newHarness(t, "tok", seed, 16<<10, 200<<10)
	if len(regions) > 0 {
		// Stands for a manifest published with --region (publish and
		// manifest test that the policy is signed and kept).
		h.content.Manifest.Policy = &manifest.Policy{Regions: regions}
	}
	w := &tokenWorld{harness: h, clock: &syncClock{t: tokenT0},
		pub: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(seed)}, 32))}
	if manifest.PublicOf(w.pub) != h.content.Manifest.Publisher {
		t.Fatal("harness publisher key changed")
	}
	ver := token.NewVerifier([]manifest.PublicKey{manifest.PublicOf(w.pub)}, w.clock)
	sink := audit.SinkFunc(func(e audit.Event) {
		w.mu.Lock()
		w.events = append(w.events, e)
		w.mu.Unlock()
	})
	h.configure = func(id string, c *Config) {
		v, ok := w.tokens.Load(id)
		if !ok {
			return // an open peer: no token, none required
		}
		c.Access = &Access{Token: func() string { return v.(*atomic.Value).Load().(string) }, Verifier: ver, Require: true, Audit: sink}
	}
	return w
}

// claims are the seed's: tenant-a, this content, an hour from tokenT0.
func (w *tokenWorld) claims() token.Claims {
	return token.Claims{Tenant: "tenant-a", Scope: token.ContentScope(w.content.ID),
		NotBefore: tokenT0.Add(-time.Minute), Expiry: tokenT0.Add(time.Hour)}
}

func (w *tokenWorld) issue(c token.Claims) string {
	s, err := token.Issue(w.pub, c)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// give makes peer id present tok (and require tokens) once added.
func (w *tokenWorld) give(id, tok string) *atomic.Value {
	v := new(atomic.Value)
	v.Store(tok)
	w.tokens.Store(id, v)
	return v
}

func (w *tokenWorld) audited(kind, peer, reason string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.ContainsFunc(w.events, func(e audit.Event) bool {
		return e.Kind == kind && e.Peer == peer && e.Reason == reason
	})
}

// poll waits for cond, failing the test after an overall deadline.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawDial opens a wire stream to target as a peer presenting tok and
// returns the first frame the target sends after reading it, or the error
// that ends the stream instead.
func rawDial(t *testing.T, n *netx.MemNetwork, id string, target netx.PeerID, content core.ContentID, tok string) (wire.Message, error) {
	t.Helper()
	host, err := n.NewHost(netx.PeerID(id))
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	st, err := host.NewStream(context.Background(), target, nil, wire.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := wire.WriteMessage(st, &wire.Handshake{Content: content, Flags: wire.FlagToken, Bits: wire.NewBitfield(0)}); err != nil {
		t.Fatal(err)
	}
	if err := wire.WriteMessage(st, &wire.Token{Token: tok}); err != nil {
		t.Fatal(err)
	}
	return wire.NewReader(st, wire.MaxFrame).Next()
}

// rawAccept makes a host that answers the first wire stream it is dialled
// on with a full bitfield and tok, and reports what the dialer sent next
// (nil message and the error when it sent nothing more).
func rawAccept(t *testing.T, n *netx.MemNetwork, id string, chunks int, tok string) (netx.Host, <-chan error) {
	t.Helper()
	host, err := n.NewHost(netx.PeerID(id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	got := make(chan error, 1)
	host.SetStreamHandler(wire.ProtocolID, func(st netx.Stream) {
		r := wire.NewReader(st, wire.MaxFrame)
		m, err := r.Next()
		hs, ok := m.(*wire.Handshake)
		if err != nil || !ok || hs.Flags&wire.FlagToken == 0 || hs.Bits.Len() != 0 {
			got <- errors.New("the dialer's handshake did not withhold its bitfield")
			return
		}
		if _, err := r.Next(); err != nil { // its token
			got <- err
			return
		}
		full := wire.NewBitfield(chunks)
		full.SetAll()
		wire.WriteMessage(st, &wire.Handshake{Content: hs.Content, Flags: wire.FlagToken, Bits: full})
		wire.WriteMessage(st, &wire.Token{Token: tok})
		if m, err := r.Next(); err == nil {
			got <- errors.New("the dialer sent " + m.Type().String() + " after refusing our token")
			return
		}
		got <- nil
	})
	return host, got
}

// TestTokenRefusedPeerGetsNothing: a peer with no token, an expired one,
// another tenant's, one for another content, one bound to another peer, or
// one from outside the content's regions gets no bitfield and no chunk, in
// either direction of the handshake, and the refusal is audited.
func TestTokenRefusedPeerGetsNothing(t *testing.T) {
	for k, tc := range []struct {
		name    string
		regions []string
		seed    func(token.Claims) token.Claims // the seed's claims
		leech   func(w *tokenWorld) string      // "" = no token (an open peer)
		reason  string
	}{
		{name: "no token", leech: func(w *tokenWorld) string { return "" }, reason: "token missing"},
		{name: "expired", reason: "token expired", leech: func(w *tokenWorld) string {
			c := w.claims()
			c.NotBefore, c.Expiry = tokenT0.Add(-2*time.Hour), tokenT0.Add(-time.Hour)
			return w.issue(c)
		}},
		{name: "other tenant", reason: "token tenant", leech: func(w *tokenWorld) string {
			c := w.claims()
			c.Tenant = "tenant-b"
			return w.issue(c)
		}},
		{name: "out of scope", reason: "token scope", leech: func(w *tokenWorld) string {
			c := w.claims()
			c.Scope = token.PrefixScope("not-this/")
			return w.issue(c)
		}},
		{name: "bound to another peer", reason: "token peer-binding", leech: func(w *tokenWorld) string {
			c := w.claims()
			c.Peer = "someone-else"
			return w.issue(c)
		}},
		{name: "wrong region", regions: []string{"eu"}, reason: "token region",
			seed: func(c token.Claims) token.Claims { c.Region = "eu"; return c },
			leech: func(w *tokenWorld) string {
				c := w.claims()
				c.Region = "us"
				return w.issue(c)
			}},
		{name: "forged", reason: "token untrusted", leech: func(w *tokenWorld) string {
			c := w.claims()
			s, _ := token.Issue(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xee}, 32)), c)
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newTokenWorld(t, uint64(40+k), tc.regions...)
			sc := w.claims()
			if tc.seed != nil {
				sc = tc.seed(sc)
			}
			w.give("seed", w.issue(sc))
			seed := w.addPeer("seed", true)
			w.waitAll([]*hpeer{seed}, 30*time.Second)

			bad := tc.leech(w)
			// The protocol, dialer side: the seed answers a bad token
			// with a reset, not a handshake or bitfield.
			if m, err := rawDial(t, w.net, "raw-dialer", seed.node.ID(), w.content.ID, bad); err == nil {
				t.Fatalf("seed answered a refused dialer with %v", m.Type())
			}
			// The protocol, acceptor side: the seed dialling a peer with a
			// bad token sends it no bitfield.
			acc, sent := rawAccept(t, w.net, "raw-acceptor", w.content.Len(), bad)
			if err := seed.node.Connect(w.ctx, seed.sess, acc.ID(), nil); !errors.Is(err, ErrRefused) {
				t.Fatalf("seed dialling a peer with a bad token: %v, want ErrRefused", err)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}

			// Real sessions, both directions.
			if bad != "" {
				w.give("leech", bad)
			}
			leech := w.addPeer("leech", false) // dials the seed
			seed.node.Connect(w.ctx, seed.sess, leech.node.ID(), nil)
			poll(t, "the refusal's audit event", func() bool { return w.audited(audit.KindPeerRefused, "leech", tc.reason) })
			if !w.audited(audit.KindPeerRefused, "raw-dialer", tc.reason) {
				t.Errorf("no audit event for the raw dialer (want reason %q): %+v", tc.reason, w.events)
			}
			st := leech.sess.Stats()
			if st.Have != 0 || st.BytesFromPeers != 0 || st.Peers != 0 || st.MinAvailability != 0 {
				t.Fatalf("refused peer: %+v, want no chunk, no peer, and no availability learnt", st)
			}
			if n := seed.sess.Stats().Peers; n != 0 {
				t.Fatalf("seed kept %d peers", n)
			}
		})
	}
}

// TestTokenAdmitsValidPeer: a peer with a valid token of the seed's tenant
// (and region, for a restricted content) fetches the whole content from
// the seed alone.
func TestTokenAdmitsValidPeer(t *testing.T) {
	w := newTokenWorld(t, 60, "eu", "uk")
	c := w.claims()
	c.Region = "eu"
	w.give("seed", w.issue(c))
	seed := w.addPeer("seed", true)
	w.waitAll([]*hpeer{seed}, 30*time.Second)
	c.Region, c.Peer = "uk", "leech" // bound to the peer that presents it
	w.give("leech", w.issue(c))
	leech := w.addPeer("leech", false)
	w.waitAll([]*hpeer{leech}, 30*time.Second)
	w.checkBytes(leech)
	if st := leech.sess.Stats(); st.BytesFromPeers == 0 || st.BytesFromOrigin != 0 {
		t.Fatalf("valid peer: %+v, want every byte from the seed", st)
	}
}

func (s *Session) peerOf(id netx.PeerID) *peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers[id]
}

func (s *Session) tokenExpiryOf(id netx.PeerID) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.peers[id]; p != nil {
		return p.tokenExpiry
	}
	return time.Time{}
}

// TestTokenRefreshKeepsConnection: a new token sent on an open connection
// replaces the old one, so the connection outlives the old token's expiry;
// a refresh that does not verify is refused and changes nothing.
func TestTokenRefreshKeepsConnection(t *testing.T) {
	w := newTokenWorld(t, 61)
	w.give("seed", w.issue(w.claims()))
	seed := w.addPeer("seed", true)
	short := w.claims()
	short.Expiry = tokenT0.Add(10 * time.Minute)
	cur := w.give("leech", w.issue(short))
	leech := w.addPeer("leech", false)
	poll(t, "the leech to connect", func() bool { return seed.sess.peerOf("leech") != nil })
	conn := seed.sess.peerOf("leech")

	other := short
	other.Tenant, other.Expiry = "tenant-b", tokenT0.Add(3*time.Hour)
	cur.Store(w.issue(other))
	leech.sess.accessTick()
	poll(t, "the refused refresh's audit event", func() bool { return w.audited(audit.KindTokenRefused, "leech", "refresh tenant") })
	if got := seed.sess.tokenExpiryOf("leech"); !got.Equal(short.Expiry) {
		t.Fatalf("a refused refresh changed the expiry to %v", got)
	}

	long := short
	long.Expiry = tokenT0.Add(2 * time.Hour)
	time.Sleep(refreshMinGap) // the session (real clock) ignores refreshes closer together
	cur.Store(w.issue(long))
	leech.sess.accessTick()
	poll(t, "the refresh to reach the seed", func() bool { return seed.sess.tokenExpiryOf("leech").Equal(long.Expiry) })
	w.clock.Set(tokenT0.Add(30 * time.Minute)) // the first token is long expired
	seed.sess.accessTick()
	if p := seed.sess.peerOf("leech"); p != conn {
		t.Fatal("the connection was dropped although the token was refreshed")
	}
	select {
	case <-conn.quit:
		t.Fatal("the refreshed connection was closed")
	default:
	}
}

// TestTokenExpiryClosesConnection: when a peer's token expires and no
// refresh came, the connection is closed and the expiry audited.
func TestTokenExpiryClosesConnection(t *testing.T) {
	w := newTokenWorld(t, 62)
	w.give("seed", w.issue(w.claims()))
	seed := w.addPeer("seed", true)
	short := w.claims()
	short.Expiry = tokenT0.Add(10 * time.Minute)
	w.give("leech", w.issue(short))
	w.addPeer("leech", false)
	poll(t, "the leech to connect", func() bool { return seed.sess.peerOf("leech") != nil })
	w.clock.Set(short.Expiry.Add(token.DefaultSkew))
	seed.sess.accessTick()
	poll(t, "the expired peer to be dropped", func() bool { return seed.sess.peerOf("leech") == nil })
	if !w.audited(audit.KindTokenRefused, "leech", "expired") {
		t.Fatalf("no audit event for the expiry: %+v", w.events)
	}
}

// TestMetaGateServesOnlyTokenHolders: with a gate set, a peer without a
// valid token gets no manifest over the meta protocol; one with a valid
// token (sent by FetchMeta from SetMetaAccess) gets it.
func TestMetaGateServesOnlyTokenHolders(t *testing.T) {
	w := newTokenWorld(t, 63)
	w.give("seed", w.issue(w.claims()))
	seed := w.addPeer("seed", true)
	seed.node.ServeMeta(func(wire.MetaKind, core.Hash) ([]byte, bool) { return []byte("manifest bytes"), true })
	seed.node.SetMetaAccess(nil, func(req wire.MetaRequest, from netx.PeerID) error { return seed.sess.CheckMeta(req.Token, from) })
	host, err := w.net.NewHost("asker")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	asker := NewNode(host, nil)
	var tok atomic.Value
	tok.Store("")
	asker.SetMetaAccess(func() string { return tok.Load().(string) }, nil)
	other := w.claims()
	other.Tenant = "tenant-b"
	for _, bad := range []string{"", w.issue(other)} {
		tok.Store(bad)
		if b, err := asker.FetchMeta(w.ctx, seed.node.ID(), nil, wire.MetaManifest, core.Hash(w.content.ID), 1<<20); !errors.Is(err, ErrMetaRefused) {
			t.Fatalf("token %q: got %q, %v; want ErrMetaRefused", bad, b, err)
		}
	}
	if !w.audited(audit.KindPeerRefused, "asker", "token missing") || !w.audited(audit.KindPeerRefused, "asker", "token tenant") {
		t.Fatalf("refusals not audited: %+v", w.events)
	}
	tok.Store(w.issue(w.claims()))
	b, err := asker.FetchMeta(w.ctx, seed.node.ID(), nil, wire.MetaManifest, core.Hash(w.content.ID), 1<<20)
	if err != nil || string(b) != "manifest bytes" {
		t.Fatalf("valid token: %q, %v", b, err)
	}
}

// A peer refused over and over for the same reason is audited once a
// refusalQuiet, not once per stream; another reason is audited at once.
func TestRefusalsAuditedOncePerQuietPeriod(t *testing.T) {
	var l refusalLog
	t0 := tokenT0
	if !l.first("p", "token missing", t0) {
		t.Fatal("first refusal not audited")
	}
	for k := range 100 {
		if l.first("p", "token missing", t0.Add(time.Duration(k)*time.Millisecond)) {
			t.Fatalf("refusal %d within the quiet period audited again", k)
		}
	}
	if !l.first("p", "token expired", t0) || !l.first("q", "token missing", t0) {
		t.Fatal("a new reason or a new peer was not audited")
	}
	if !l.first("p", "token missing", t0.Add(refusalQuiet)) {
		t.Fatal("a refusal after the quiet period was not audited")
	}
	for i := range 2 * maxRefusalLog {
		l.first(netx.PeerID(fmt.Sprint("x", i)), "token missing", t0)
	}
	if n := len(l.last); n > maxRefusalLog {
		t.Fatalf("%d refusals remembered, bound %d", n, maxRefusalLog)
	}
}
