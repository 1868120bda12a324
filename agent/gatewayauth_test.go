package agent

import (
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/token"
)

// TestGatewayBearerTokens: with GatewayTokens, the gateway serves a content
// only to requests whose bearer token admits them to it, and a refused
// request makes the peer join no swarm.
func TestGatewayBearerTokens(t *testing.T) {
	fx := publishTree(t, "news", 31, map[string]int{"a.bin": 3 * testChunk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := netx.NewMemNetwork().NewHost("gw")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPeer(ctx, PeerConfig{CacheDir: t.TempDir(), Origin: fx.url, Trust: manifest.NewKeySet(manifest.PublicOf(fx.key)), Host: h, GatewayTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(p.Gateway())
	defer srv.Close()
	issue := func(key ed25519.PrivateKey, scope token.Scope) string {
		s, err := token.Issue(key, token.Claims{Tenant: "acme", Scope: scope, NotBefore: time.Now().Add(-time.Minute), Expiry: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	other := ed25519.NewKeyFromSeed(make([]byte, 32))
	url := srv.URL + "/c/" + fx.id.String() + "/" + fx.m.Files[0].Path
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"untrusted key", issue(other, token.ContentScope(fx.id)), http.StatusForbidden},
		{"prefix of other names", issue(fx.key, token.PrefixScope("sport/")), http.StatusForbidden},
		{"content token", issue(fx.key, token.ContentScope(fx.id)), http.StatusOK},
		{"prefix token", issue(fx.key, token.PrefixScope(fx.m.Name[:2])), http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
		if tc.want == http.StatusOK && len(body) != 3*testChunk {
			t.Fatalf("%s: %d bytes, want %d", tc.name, len(body), 3*testChunk)
		}
		if tc.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without a Bearer challenge", tc.name)
		}
		if tc.want != http.StatusOK && len(p.Sessions()) != 0 {
			t.Fatalf("%s: a refused request joined the swarm", tc.name)
		}
	}
}
