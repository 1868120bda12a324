package tracker

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/token"
)

// TestTokenAuthorizerWithRealTokens runs the tracker's checks with real
// access tokens (TokenAuthorizer over a token.Verifier): peers of tenant
// acme find each other; no token, an expired one, one signed by an
// untrusted key, one for another content and one bound to another peer are
// refused (403) and learn no peer; a valid token of tenant globex for the
// same content is admitted into globex's swarm and learns no acme peer.
func TestTokenAuthorizerWithRealTokens(t *testing.T) {
	pubKey, priv, _ := ed25519.GenerateKey(nil)
	_, stranger, _ := ed25519.GenerateKey(nil)
	var auth Authorizer // built once the server's clock exists
	s, clk, log := newStrictServer(t, func(c *Config) {
		c.Authorize = func(ctx context.Context, r AuthRequest) (Grant, error) { return auth(ctx, r) }
	})
	auth = TokenAuthorizer(token.NewVerifier([]manifest.PublicKey{manifest.PublicKey(pubKey)}, clk))
	now := clk.Now()
	issue := func(key ed25519.PrivateKey, tenant string, c string, peer string, exp time.Time) string {
		t.Helper()
		tok, err := token.Issue(key, token.Claims{Tenant: tenant, Scope: token.ContentScope(content(c)), Peer: peer, NotBefore: now.Add(-time.Hour), Expiry: exp})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	later := now.Add(time.Hour)
	announceWith := func(p testPeer, i int, tok string) (int, []string, string) {
		r := at("film", fmt.Sprintf("198.18.%d.1", i), 1)
		r.Token = tok
		code, resp, msg := send(t, s, fmt.Sprintf("198.18.%d.1:5000", i), p.signed(t, r, clk.Now()))
		return code, peerIDs(resp.Peers), msg
	}
	var acme []string
	for i := range 3 {
		p := newPeer(t, uint64(i+1))
		if code, _, msg := announceWith(p, i, issue(priv, "acme", "film", "", later)); code != http.StatusOK {
			t.Fatalf("acme peer %d: HTTP %d %s", i, code, msg)
		}
		acme = append(acme, p.id)
	}
	x := newPeer(t, 50)
	for name, tok := range map[string]string{
		"none":          "",
		"expired":       issue(priv, "acme", "film", "", now.Add(-time.Minute)),
		"untrusted key": issue(stranger, "acme", "film", "", later),
		"other content": issue(priv, "acme", "other", "", later),
		"other peer":    issue(priv, "acme", "film", newPeer(t, 51).id, later),
		"malformed":     "not-a-token",
	} {
		clk.Advance(time.Millisecond)
		code, peers, msg := announceWith(x, 9, tok)
		if code != http.StatusForbidden || len(peers) != 0 || !strings.Contains(msg, "token refused") {
			t.Errorf("token %s: HTTP %d, %d peers, %q; want 403 token refused and none", name, code, len(peers), msg)
		}
	}
	if ev := log.of(audit.KindTokenRefused); len(ev) != 6 {
		t.Errorf("%d token.refused audit events, want 6", len(ev))
	}
	clk.Advance(time.Millisecond)
	code, peers, msg := announceWith(x, 9, issue(priv, "globex", "film", x.id, later))
	if code != http.StatusOK || len(peers) != 0 {
		t.Fatalf("globex peer: HTTP %d, peers %v (%s); want admitted, no acme peer", code, peers, msg)
	}
	clk.Advance(time.Millisecond)
	code, peers, _ = announceWith(newPeer(t, 4), 3, issue(priv, "acme", "film", "", later))
	if code != http.StatusOK || len(peers) != 3 || slices.Contains(peers, x.id) {
		t.Fatalf("a fourth acme peer: HTTP %d, peers %v; want the 3 acme peers %v", code, peers, acme)
	}
}
