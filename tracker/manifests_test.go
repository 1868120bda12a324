package tracker

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
)

// signedManifest returns the encoding of a small manifest named name and its
// content ID.
func signedManifest(t *testing.T, name string) ([]byte, core.ContentID) {
	t.Helper()
	m := &manifest.Manifest{
		Version: manifest.Version, Name: name, Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		ChunkSize: core.DefaultChunkSize, Hash: manifest.HashSHA256,
		Files:  []manifest.File{{Path: "a", Size: 1, Chunks: 1, Root: manifest.Root([]core.Hash{core.SumSHA256([]byte("a"))})}},
		Policy: &manifest.Policy{Scope: "acme"},
	}
	if err := m.Sign(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))); err != nil {
		t.Fatal(err)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b, core.ContentID(core.SumSHA256(b))
}

// fakeOrigin serves files by layout path and counts requests per path.
type fakeOrigin struct {
	mu    sync.Mutex // guards files
	files map[string][]byte
	hits  atomic.Int64
}

func (o *fakeOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.hits.Add(1)
	o.mu.Lock()
	b, ok := o.files[strings.TrimPrefix(r.URL.Path, "/www/")]
	o.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(b)
}

func TestManifestLookupVerifiesAndCaches(t *testing.T) {
	good, goodID := signedManifest(t, "apps/editor")
	other, _ := signedManifest(t, "apps/other")
	_, swappedID := signedManifest(t, "apps/swapped")
	o := &fakeOrigin{files: map[string][]byte{
		layout.ManifestPath(goodID):    good,
		layout.ManifestPath(swappedID): other, // signed, but not the content asked for
	}}
	hs := httptest.NewServer(o)
	defer hs.Close()
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l, err := NewManifestLookup(ManifestLookupConfig{Origin: hs.URL + "/www/", Clock: clk, NegativeTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	for range 3 {
		info, err := l.Lookup(ctx, goodID)
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != "apps/editor" || info.Policy.Scope != "acme" || info.Content != goodID {
			t.Fatalf("info %+v", info)
		}
	}
	if n := o.hits.Load(); n != 1 {
		t.Fatalf("3 lookups cost %d origin requests, want 1", n)
	}

	missing := content("missing")
	for _, c := range []struct {
		id   core.ContentID
		want string
	}{{swappedID, "hash"}, {missing, "404"}} {
		before := o.hits.Load()
		for range 3 {
			if _, err := l.Lookup(ctx, c.id); !errors.Is(err, ErrManifestLookup) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("lookup of %s: %v, want ErrManifestLookup mentioning %q", c.id.Short(), err, c.want)
			}
		}
		if n := o.hits.Load() - before; n != 1 {
			t.Fatalf("3 failed lookups cost %d origin requests, want 1 (negative cache)", n)
		}
	}
	clk.Advance(2 * time.Minute)
	before := o.hits.Load()
	l.Lookup(ctx, missing)
	if n := o.hits.Load() - before; n != 1 {
		t.Fatalf("after the negative TTL, %d origin requests, want 1 retry", n)
	}
}

func TestManifestLookupRefusesBadOrigin(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "::"} {
		if _, err := NewManifestLookup(ManifestLookupConfig{Origin: u}); err == nil {
			t.Errorf("origin %q accepted", u)
		}
	}
}

// TestAuthorizeSeesTheManifest: the Authorize hook gets the content's
// verified manifest through AuthRequest.Manifest, so a token scoped to a
// name prefix can be checked.
func TestAuthorizeSeesTheManifest(t *testing.T) {
	good, id := signedManifest(t, "apps/editor")
	hs := httptest.NewServer(&fakeOrigin{files: map[string][]byte{layout.ManifestPath(id): good}})
	defer hs.Close()
	l, err := NewManifestLookup(ManifestLookupConfig{Origin: hs.URL + "/www"})
	if err != nil {
		t.Fatal(err)
	}
	var seen string
	s, clk, _ := newStrictServer(t, func(c *Config) {
		c.Manifests = l
		c.Authorize = func(ctx context.Context, r AuthRequest) (Grant, error) {
			info, err := r.Manifest(ctx)
			if err != nil {
				return Grant{}, err
			}
			seen = info.Name
			if !strings.HasPrefix(info.Name, r.Token) {
				return Grant{}, errors.New("token scope " + r.Token + " does not cover " + info.Name)
			}
			return Grant{Tenant: "acme"}, nil
		}
	})
	p := newPeer(t, 1)
	r := at("x", "198.18.0.1", 1)
	r.Content, r.Token = id, "apps/"
	mustSend(t, s, "198.18.0.1:5000", p.signed(t, r, clk.Now()))
	if seen != "apps/editor" {
		t.Fatalf("Authorize saw name %q", seen)
	}
	r.Token = "docs/"
	if code, _, msg := send(t, s, "198.18.0.1:5000", p.signed(t, r, clk.Now().Add(time.Millisecond))); code != http.StatusForbidden || !strings.Contains(msg, "does not cover") {
		t.Fatalf("out-of-scope token: HTTP %d %q, want 403 with the reason", code, msg)
	}
}
