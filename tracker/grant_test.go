package tracker

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/token"
)

// grantRig is a strict tracker with one-hour tickets that checks real
// tokens and reuses their verdicts (TokenRegrant), counting the
// Authorizer's calls. Its trust set is keys.
type grantRig struct {
	s     *Server
	clk   *core.ManualClock
	calls atomic.Int64
	priv  ed25519.PrivateKey
	keys  *manifest.KeySet
	audit *auditLog
}

func newGrantRig(t *testing.T) *grantRig {
	t.Helper()
	g := &grantRig{priv: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, ed25519.SeedSize))}
	g.keys = manifest.NewKeySet(manifest.PublicOf(g.priv))
	var auth Authorizer
	var regrant func(Grant) error
	g.s, g.clk, g.audit = newStrictServer(t, func(c *Config) {
		c.SessionTTL = time.Hour
		c.Authorize = func(ctx context.Context, r AuthRequest) (Grant, error) {
			g.calls.Add(1)
			return auth(ctx, r)
		}
		c.Regrant = func(gr Grant) error { return regrant(gr) }
	})
	v := token.NewTrustVerifier(g.keys, g.clk).WithCache(100)
	auth, regrant = TokenAuthorizer(v), TokenRegrant(v)
	return g
}

// token issues a token of tenant for content c, bound to peer, from region,
// ending at exp.
func (g *grantRig) token(t *testing.T, tenant, c, peer, region string, exp time.Time) string {
	t.Helper()
	tok, err := token.Issue(g.priv, token.Claims{Tenant: tenant, Scope: token.ContentScope(content(c)), Peer: peer,
		Region: region, NotBefore: g.clk.Now().Add(-time.Hour), Expiry: exp})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signedWith is p's announce of c from ip, with tok, signed now.
func (g *grantRig) signedWith(t *testing.T, p testPeer, c, ip, tok string) discovery.AnnounceRequest {
	r := at(c, ip, 4001)
	r.Token = tok
	g.clk.Advance(time.Millisecond)
	return p.signed(t, r, g.clk.Now())
}

// macedWith is p's announce of c from ip MACed with tk, the token tok in
// the request before MACWith (which drops it for a ticket with a grant).
func (g *grantRig) macedWith(p testPeer, c, ip, tok string, tk discovery.Session) discovery.AnnounceRequest {
	r := at(c, ip, 4001)
	r.Token = tok
	g.clk.Advance(time.Millisecond)
	return maced(p, r, tk, g.clk.Now())
}

// TestGrantTicketStandsForToken: a signed announce whose token is granted
// brings a ticket with the grant, ending when the token does; announces
// MACed with it carry no token, are not authorized again, and are taken
// with the grant's tenant and region. At the ticket's end the peer must
// sign, and its expired token is refused.
func TestGrantTicketStandsForToken(t *testing.T) {
	g := newGrantRig(t)
	p, w, x := newPeer(t, 1), newPeer(t, 2), newPeer(t, 3)
	tokEnd := g.clk.Now().Add(20 * time.Minute).Truncate(time.Second)
	tok := g.token(t, "acme", "c", p.id, "eu", tokEnd)
	resp := mustSend(t, g.s, "198.18.0.1:5000", g.signedWith(t, p, "c", "198.18.0.1", tok))
	tk := resp.Session
	if tk == nil || len(tk.Grant) == 0 || tk.Exp != tokEnd.Unix() {
		t.Fatalf("ticket %+v; want one with a grant, ending with the token at %d", tk, tokEnd.Unix())
	}
	if got, err := decodeGrant(tk.Grant); err != nil || got.Tenant != "acme" || got.Region != "eu" || got.Root != manifest.PublicOf(g.priv) {
		t.Fatalf("grant decodes to %+v (%v), want tenant acme, region eu, rooted in the issuer", got, err)
	}
	before := g.calls.Load()
	for i := range 3 {
		r := g.macedWith(p, "c", "198.18.0.1", tok, *tk)
		if r.Token != "" || len(r.Grant) == 0 {
			t.Fatalf("MACed announce carries token %q, grant %v; want the grant alone", r.Token, r.Grant)
		}
		if resp := mustSend(t, g.s, "198.18.0.1:5000", r); resp.Session != nil {
			t.Fatalf("MACed announce %d got a ticket %+v", i, resp.Session)
		}
	}
	if n := g.calls.Load() - before; n != 0 {
		t.Fatalf("%d authorizations for announces MACed with a grant, want none", n)
	}
	if got := metricLabel(t, g.s, `shoal_tracker_session_tickets_total{event="granted"}`); got != 3 {
		t.Fatalf("%v announces counted as taken on their grant, want 3", got)
	}
	// The grant's tenant and region were applied: an acme peer sees p in
	// eu (the token's region, not a claimed one); a globex peer does not.
	wr := mustSend(t, g.s, "198.18.0.2:5000", g.signedWith(t, w, "c", "198.18.0.2", g.token(t, "acme", "c", w.id, "", tokEnd)))
	if got, ok := find(wr.Peers, p.id); !ok || got.Region != "eu" {
		t.Fatalf("acme watcher sees %+v, want p in region eu", wr.Peers)
	}
	xr := mustSend(t, g.s, "198.18.0.3:5000", g.signedWith(t, x, "c", "198.18.0.3", g.token(t, "globex", "c", x.id, "", tokEnd)))
	if _, ok := find(xr.Peers, p.id); ok {
		t.Fatalf("globex watcher sees acme's peer: %+v", xr.Peers)
	}
	// The ticket ends with the token: past it, a ticket refusal, then the
	// signed announce's expired token is refused.
	g.clk.T = tokEnd
	code, _, msg := send(t, g.s, "198.18.0.1:5000", g.macedWith(p, "c", "198.18.0.1", tok, *tk))
	if code != http.StatusUnauthorized || !strings.Contains(msg, discovery.ErrSessionExpired.Error()) {
		t.Fatalf("MACed at the token's end: HTTP %d %q, want 401 ticket expired", code, msg)
	}
	g.clk.Advance(token.DefaultSkew + time.Second)
	code, _, msg = send(t, g.s, "198.18.0.1:5000", g.signedWith(t, p, "c", "198.18.0.1", tok))
	if code != http.StatusForbidden || !strings.Contains(msg, "token refused") {
		t.Fatalf("signed with the expired token: HTTP %d %q, want 403 token refused", code, msg)
	}
}

// TestGrantNeverAcceptedUnlessIssued: a grant is only good with the ticket
// the tracker issued it with, for that peer, content and exp. Another
// content's, tenant's, region's or peer's grant, a tampered grant, a grant
// sent with a ticket of the first format, or one the tracker's own key
// binds but that does not decode, gets the ticket refusal (401: the peer
// signs again) and changes nothing.
func TestGrantNeverAcceptedUnlessIssued(t *testing.T) {
	const ip = "198.18.0.1"
	cases := []struct {
		name string
		mk   func(g *grantRig, p, q testPeer, tok string, tk discovery.Session) discovery.AnnounceRequest
	}{
		{"another content", func(g *grantRig, p, q testPeer, tok string, tk discovery.Session) discovery.AnnounceRequest {
			return g.macedWith(p, "d", ip, tok, tk)
		}},
		{"another tenant", func(g *grantRig, p, q testPeer, tok string, tk discovery.Session) discovery.AnnounceRequest {
			tk.Grant = appendGrant(nil, &Grant{Tenant: "globex", Region: "eu"})
			return g.macedWith(p, "c", ip, tok, tk)
		}},
		{"another region", func(g *grantRig, p, q testPeer, tok string, tk discovery.Session) discovery.AnnounceRequest {
			tk.Grant = appendGrant(nil, &Grant{Tenant: "acme", Region: "us"})
			return g.macedWith(p, "c", ip, tok, tk)
		}},
		{"another peer", func(g *grantRig, p, q testPeer, tok string, tk discovery.Session) discovery.AnnounceRequest {
			return g.macedWith(q, "c", ip, tok, tk)
		}},
		{"exp moved later", func(g *grantRig, p, q testPeer, tok string, tk discovery.Session) discovery.AnnounceRequest {
			tk.Exp += 60
			return g.macedWith(p, "c", ip, tok, tk)
		}},
		{"tampered grant", func(g *grantRig, p, q testPeer, tok string, tk discovery.Session) discovery.AnnounceRequest {
			tk.Grant = slices.Clone(tk.Grant)
			tk.Grant[len(tk.Grant)-1] ^= 1
			return g.macedWith(p, "c", ip, tok, tk)
		}},
		{"grant on a first-format ticket", func(g *grantRig, p, q testPeer, tok string, tk discovery.Session) discovery.AnnounceRequest {
			old := g.s.sess.issue(p.id, 0, g.clk.Now())
			old.Grant = tk.Grant
			return g.macedWith(p, "c", ip, tok, *old)
		}},
		{"bound by K but not a grant", func(g *grantRig, p, q testPeer, tok string, tk discovery.Session) discovery.AnnounceRequest {
			tk.Grant = []byte{grantVersion + 1, 0, 0, 0}
			key := g.s.sess.keyV2(p.id, tk.Exp, content("c"), tk.Grant)
			tk.Key = key[:]
			return g.macedWith(p, "c", ip, tok, tk)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newGrantRig(t)
			p, q := newPeer(t, 1), newPeer(t, 2)
			end := g.clk.Now().Add(2 * time.Hour)
			tok := g.token(t, "acme", "c", p.id, "eu", end)
			tk := mustSend(t, g.s, ip+":5000", g.signedWith(t, p, "c", ip, tok)).Session
			if tk == nil || len(tk.Grant) == 0 {
				t.Fatalf("no ticket with a grant: %+v", tk)
			}
			r := c.mk(g, p, q, tok, *tk)
			code, _, msg := send(t, g.s, ip+":5000", r)
			if code != http.StatusUnauthorized || !discovery.IsSessionRefusal(&textErr{msg}) {
				t.Fatalf("HTTP %d %q, want 401, a ticket refusal", code, msg)
			}
			// Nothing changed: no globex swarm, q not listed, p where its
			// signed announce put it.
			for _, st := range g.s.Swarms() {
				if st.Tenant != "acme" || st.Content != content("c") {
					t.Fatalf("a swarm %s/%s appeared", st.Tenant, st.Content.Short())
				}
			}
			w := newPeer(t, 3)
			wr := mustSend(t, g.s, "198.18.0.3:5000", g.signedWith(t, w, "c", "198.18.0.3", g.token(t, "acme", "c", w.id, "", end)))
			if _, ok := find(wr.Peers, q.id); ok {
				t.Fatalf("q listed on p's grant: %+v", wr.Peers)
			}
			if got, ok := find(wr.Peers, p.id); !ok || got.Region != "eu" {
				t.Fatalf("watcher sees %+v, want p in eu", wr.Peers)
			}
		})
	}
}

// TestTicketWithoutGrantKeepsTokenPath: a ticket without a grant (what a
// tracker of the previous build issues, sharing K) still works with the
// token in every announce, which is checked each time, and without one
// the announce is refused for its token.
func TestTicketWithoutGrantKeepsTokenPath(t *testing.T) {
	g := newGrantRig(t)
	p := newPeer(t, 1)
	tok := g.token(t, "acme", "c", p.id, "", g.clk.Now().Add(2*time.Hour))
	mustSend(t, g.s, "198.18.0.1:5000", g.signedWith(t, p, "c", "198.18.0.1", tok))
	old := g.s.sess.issue(p.id, 0, g.clk.Now())
	before := g.calls.Load()
	r := g.macedWith(p, "c", "198.18.0.1", tok, *old)
	if r.Token != tok || r.Grant != nil {
		t.Fatalf("MACed with a ticket without a grant: token %q, grant %v", r.Token, r.Grant)
	}
	mustSend(t, g.s, "198.18.0.1:5000", r)
	if g.calls.Load() != before+1 {
		t.Fatalf("the token of an announce with a grantless ticket was not checked")
	}
	code, _, msg := send(t, g.s, "198.18.0.1:5000", g.macedWith(p, "c", "198.18.0.1", "", *old))
	if code != http.StatusForbidden || !strings.Contains(msg, "token refused") {
		t.Fatalf("grantless ticket, no token: HTTP %d %q, want 403 token refused", code, msg)
	}
}

// TestGrantKeyDerivation pins the key of a ticket with a grant:
// HMAC-SHA256(K, "shoal session v2\n" || uvarint(len(peer)) || peer ||
// uint64be(exp) || content || uvarint(len(grant)) || grant), so replicas
// of any later build sharing K accept each other's tickets; each input
// changes the key, and it never equals the first format's.
func TestGrantKeyDerivation(t *testing.T) {
	secret := bytes.Repeat([]byte{3}, MinSessionKeyLen)
	s := newSessions(secret, DefaultSessionTTL, 0, prometheus.NewRegistry())
	peer, exp, c := "12D3KooWExamplePeer", int64(1_800_000_123), content("c")
	for _, gl := range []int{0, 5, 300, discovery.MaxGrantLen} {
		grant := bytes.Repeat([]byte{7}, gl)
		msg := binary.AppendUvarint([]byte("shoal session v2\n"), uint64(len(peer)))
		msg = binary.BigEndian.AppendUint64(append(msg, peer...), uint64(exp))
		msg = binary.AppendUvarint(append(msg, c[:]...), uint64(len(grant)))
		m := hmac.New(sha256.New, secret)
		m.Write(append(msg, grant...))
		if got := s.keyV2(peer, exp, c, grant); !bytes.Equal(got[:], m.Sum(nil)) {
			t.Fatalf("grant of %d bytes: derived key differs from HMAC-SHA256(K, ...)", gl)
		}
	}
	grant := []byte{1, 0, 0, 0}
	k := s.keyV2(peer, exp, c, grant)
	for name, other := range map[string][sha256.Size]byte{
		"peer":         s.keyV2(peer+"x", exp, c, grant),
		"exp":          s.keyV2(peer, exp+1, c, grant),
		"content":      s.keyV2(peer, exp, content("d"), grant),
		"grant":        s.keyV2(peer, exp, c, []byte{1, 0, 0, 1}),
		"first format": s.keyArray(peer, exp),
	} {
		if other == k {
			t.Errorf("another %s derives the same key", name)
		}
	}
}

// TestGrantEndsWithDelegation: TokenAuthorizer's grant ends when the token
// does, or its delegation when that is sooner; the ticket ends no later
// than the grant, and no later than the TTL.
func TestGrantEndsWithDelegation(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	_, dpriv, _ := ed25519.GenerateKey(nil)
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	now := clk.Now()
	auth := TokenAuthorizer(token.NewVerifier([]manifest.PublicKey{manifest.PublicKey(pub)}, clk))
	s := newSessions(bytes.Repeat([]byte{1}, MinSessionKeyLen), time.Hour, 0, prometheus.NewRegistry())
	for _, c := range []struct{ tokEnd, delEnd, want time.Time }{
		{now.Add(30 * time.Minute), now.Add(50 * time.Minute), now.Add(30 * time.Minute)},
		{now.Add(50 * time.Minute), now.Add(20 * time.Minute), now.Add(20 * time.Minute)},
		{now.Add(3 * time.Hour), now.Add(4 * time.Hour), now.Add(3 * time.Hour)},
	} {
		ds, err := token.Delegate(priv, token.Delegation{Tenant: "acme", Scope: token.ContentScope(content("c")),
			Delegate: manifest.PublicOf(dpriv), Expiry: c.delEnd})
		if err != nil {
			t.Fatal(err)
		}
		del, err := token.DecodeDelegation(ds)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := token.Issue(dpriv, token.Claims{Tenant: "acme", Scope: token.ContentScope(content("c")),
			NotBefore: now.Add(-time.Hour), Expiry: c.tokEnd, Delegation: del})
		if err != nil {
			t.Fatal(err)
		}
		g, err := auth(context.Background(), AuthRequest{Token: tok, Content: content("c"), Peer: "p"})
		if err != nil {
			t.Fatal(err)
		}
		if g.Root != manifest.PublicKey(pub) {
			t.Errorf("delegated token's grant rests on %s, want the delegating publisher %s", g.Root, manifest.PublicKey(pub))
		}
		if !g.Expiry.Equal(c.want) {
			t.Errorf("token to %s, delegation to %s: grant ends %s, want %s", c.tokEnd, c.delEnd, g.Expiry, c.want)
		}
		tk := s.issueGrant("p", content("c"), &g, now)
		if want := min(c.want.Unix(), now.Add(time.Hour).Unix()); tk.Exp != want || len(tk.Grant) == 0 {
			t.Errorf("ticket %+v, want one with a grant ending at %d", tk, want)
		}
	}
}

// TestGrantEncoding: what encodes decodes to the same grant; what cannot
// be encoded gets a ticket without a grant.
func TestGrantEncoding(t *testing.T) {
	for _, g := range []Grant{
		{},
		{Tenant: "acme"},
		{Tenant: "acme", Region: "eu", Regions: []string{"eu", "us-east"}},
		{Tenant: strings.Repeat("t", maxGrantStr), Regions: []string{"", strings.Repeat("r", maxGrantStr)}},
		{Root: manifest.PublicKey(bytes.Repeat([]byte{9}, 32)), Tenant: "acme"},
	} {
		if !g.encodable() {
			t.Errorf("grant %.60v does not encode", g)
			continue
		}
		b := appendGrant(nil, &g)
		back, err := decodeGrant(b)
		if err != nil || back.Root != g.Root || back.Tenant != g.Tenant || back.Region != g.Region || !slices.Equal(back.Regions, g.Regions) {
			t.Errorf("grant %+v came back as %+v (%v)", g, back, err)
		}
	}
	s := newSessions(bytes.Repeat([]byte{1}, MinSessionKeyLen), time.Hour, 0, prometheus.NewRegistry())
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, g := range []Grant{
		{Tenant: strings.Repeat("t", maxGrantStr+1)},
		{Regions: make([]string, maxGrantRegions+1)},
		{Tenant: "acme", Expiry: now.Add(time.Millisecond)},
		{Tenant: "acme", Regions: slices.Repeat([]string{strings.Repeat("r", discovery.MaxGrantLen/maxGrantRegions)}, maxGrantRegions)},
	} {
		if tk := s.issueGrant("p", content("c"), &g, now); tk == nil || tk.Grant != nil || tk.Exp != now.Add(time.Hour).Unix() {
			t.Errorf("grant %.40v: ticket %+v, want one without a grant for the TTL", g, tk)
		}
	}
	// Grant{} encodes as version, 32 root bytes, then 0, 0, 0.
	if b := appendGrant(nil, &Grant{}); len(b) != 36 {
		t.Fatalf("empty grant encodes as %d bytes, want 36", len(b))
	}
	root := func(tail ...byte) []byte { return append(append([]byte{1}, make([]byte, 32)...), tail...) }
	for _, b := range [][]byte{nil, {2, 0, 0, 0}, {1}, {1, 0, 0, 0}, root()[:20], root(), root(0), root(0, 0), root(5, 'a'),
		root(0, 0, 1), root(0, 0, 0, 0), root(0, 0, 2, 0), append(root(0, 0, 0), make([]byte, discovery.MaxGrantLen)...)} {
		if g, err := decodeGrant(b); !errors.Is(err, errGrant) {
			t.Errorf("decodeGrant(%v) = %+v, %v; want errGrant", b, g, err)
		}
	}
}

// FuzzDecodeGrant: a grant decodes only if it is the one encoding of what
// it decodes to (decode → encode gives the input back), and that decodes
// to the same grant again.
func FuzzDecodeGrant(f *testing.F) {
	f.Add(appendGrant(nil, &Grant{Tenant: "acme", Region: "eu", Regions: []string{"eu", "us"}}))
	f.Add(appendGrant(nil, &Grant{Root: manifest.PublicKey(bytes.Repeat([]byte{9}, 32))}))
	f.Add(append(append([]byte{1}, make([]byte, 32)...), 255, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := decodeGrant(b)
		if err != nil {
			if !errors.Is(err, errGrant) {
				t.Fatalf("error %v does not wrap errGrant", err)
			}
			return
		}
		if !g.encodable() {
			t.Fatalf("decoded %+v, which does not encode", g)
		}
		enc := appendGrant(nil, &g)
		if !bytes.Equal(enc, b) {
			t.Fatalf("%x decodes to %+v, which encodes as %x", b, g, enc)
		}
		again, err := decodeGrant(enc)
		if err != nil || fmt.Sprint(again) != fmt.Sprint(g) {
			t.Fatalf("decode → encode → decode: %+v, %v; want %+v", again, err, g)
		}
	})
}

// TestGrantCacheAnswersAsDecode: the cache gives what decodeGrant gives,
// for more grants than it holds and for each of them again, never another
// grant's; what does not decode is refused each time.
func TestGrantCacheAnswersAsDecode(t *testing.T) {
	c := newGrantCache()
	for round := range 2 {
		for i := range 4 * grantCacheSlots {
			g := Grant{Tenant: fmt.Sprintf("t%d", i), Region: "eu", Regions: []string{"eu", fmt.Sprint(i % 3)}}
			got, err := c.decode(appendGrant(nil, &g))
			if err != nil || got.Tenant != g.Tenant || !slices.Equal(got.Regions, g.Regions) {
				t.Fatalf("round %d, grant %d: %+v (%v), want %+v", round, i, got, err, g)
			}
		}
	}
	for range 2 {
		if _, err := c.decode([]byte{grantVersion, 9}); !errors.Is(err, errGrant) {
			t.Fatalf("bad grant: %v, want errGrant", err)
		}
	}
}

// BenchmarkTicketChecks is the checked part of a MACed announce, without
// HTTP or the store: decoding the body, the ticket's MAC, then the token
// (a cached check) for a ticket without a grant, or the grant for one with
// it. MACing is the peer's cost, made before the timer starts.
func BenchmarkTicketChecks(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, ed25519.SeedSize))
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	auth := TokenAuthorizer(token.NewVerifier([]manifest.PublicKey{manifest.PublicOf(priv)}, clk).WithCache(DefaultTokenCache))
	s := newSessions(bytes.Repeat([]byte{1}, MinSessionKeyLen), time.Hour, DefaultClockSkew, prometheus.NewRegistry())
	p := newPeer(b, 1)
	tok, err := token.Issue(priv, token.Claims{Tenant: "bench", Scope: token.ContentScope(content("c")), Peer: p.id,
		NotBefore: clk.Now().Add(-time.Hour), Expiry: clk.Now().Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	g, err := auth(context.Background(), AuthRequest{Token: tok, Content: content("c"), Peer: p.id})
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"token", "grant"} {
		b.Run(mode, func(b *testing.B) {
			tk := s.issueGrant(p.id, content("c"), &g, clk.Now())
			if mode == "token" {
				tk = s.issue(p.id, 0, clk.Now())
			}
			r := at("c", "198.18.0.1", 4001)
			r.Region, r.Token = "r1", tok
			body, _ := json.Marshal(maced(p, r, *tk, clk.Now()))
			b.ReportAllocs()
			for b.Loop() {
				req, err := discovery.DecodeAnnounceBody(body)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.verify(&req, clk.Now()); err != nil {
					b.Fatal(err)
				}
				if len(req.Grant) > 0 {
					_, err = s.grants.decode(req.Grant)
				} else {
					_, err = auth(context.Background(), AuthRequest{Token: req.Token, Content: req.Content, Peer: req.Peer})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
