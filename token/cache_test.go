package token

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

// switchTrust trusts one key until revoked.
type switchTrust struct {
	key     manifest.PublicKey
	revoked atomic.Bool
}

func (s *switchTrust) Trusts(k manifest.PublicKey) bool { return !s.revoked.Load() && k == s.key }

// TestCachedTokenStillCheckedEachTime guards the token cache: it may spare
// the signature verification, never a check whose answer can change.
func TestCachedTokenStillCheckedEachTime(t *testing.T) {
	pub, svc := keyOf("pub"), keyOf("svc")
	trust := &switchTrust{key: manifest.PublicOf(pub)}
	clk := &core.ManualClock{T: t0.Add(time.Minute)}
	v := NewTrustVerifier(trust, clk).WithCache(16)
	id := contentOf("a")
	tok := mustIssue(t, pub, base(ContentScope(id)))
	ds, _ := Delegate(pub, Delegation{Tenant: "tenant-a", Scope: ContentScope(id), Delegate: manifest.PublicOf(svc), Expiry: t0.Add(10 * time.Minute)})
	d, _ := DecodeDelegation(ds)
	dc := base(ContentScope(id))
	dc.Delegation = d
	dtok := mustIssue(t, svc, dc)

	for _, tk := range []string{tok, tok, dtok, dtok} { // the second of each is a cache hit
		if _, err := v.Check(tk, Subject{Content: id}); err != nil {
			t.Fatalf("valid token refused: %v", err)
		}
	}
	if v.verified.Len() != 2 {
		t.Fatalf("cache holds %d tokens, want 2", v.verified.Len())
	}
	// The returned claims are a copy: changing them does not change the cache.
	c, _ := v.Check(tok, Subject{Content: id})
	c.Tenant = "mallory"
	if c2, _ := v.Check(tok, Subject{Content: id}); c2.Tenant != "tenant-a" {
		t.Fatalf("cached claims changed through a returned copy: tenant %q", c2.Tenant)
	}
	if _, err := v.Check(tok, Subject{Content: contentOf("b")}); !errors.Is(err, ErrScope) {
		t.Fatalf("cached token for another content: %v, want ErrScope", err)
	}
	b, _ := base64.RawURLEncoding.DecodeString(tok)
	b[2+32+1] ^= 1
	if _, err := v.Check(base64.RawURLEncoding.EncodeToString(b), Subject{Content: id}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered copy of a cached token: %v, want ErrBadSignature", err)
	}
	clk.T = t0.Add(11 * time.Minute) // past the delegation's expiry and skew
	if _, err := v.Check(dtok, Subject{Content: id}); !errors.Is(err, ErrDelegation) {
		t.Fatalf("cached token with an expired delegation: %v, want ErrDelegation", err)
	}
	trust.revoked.Store(true)
	if _, err := v.Check(tok, Subject{Content: id}); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("cached token of a key no longer trusted: %v, want ErrUntrusted", err)
	}
	trust.revoked.Store(false)
	clk.T = t0.Add(2 * time.Hour)
	if _, err := v.Check(tok, Subject{Content: id}); !errors.Is(err, ErrExpired) {
		t.Fatalf("cached token past its expiry: %v, want ErrExpired", err)
	}
}

// TestTokenCacheBounded: the cache never holds more than its size.
func TestTokenCacheBounded(t *testing.T) {
	pub := keyOf("pub")
	v := NewVerifier([]manifest.PublicKey{manifest.PublicOf(pub)}, &core.ManualClock{T: t0.Add(time.Minute)}).WithCache(4)
	for i := range 10 {
		c := base(AnyScope())
		c.Region = string(rune('a' + i))
		if _, err := v.Check(mustIssue(t, pub, c), Subject{Publisher: manifest.PublicOf(pub)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.verified.Len(); n != 4 {
		t.Fatalf("cache holds %d tokens, want its bound 4", n)
	}
}

// BenchmarkCheckCached is BenchmarkCheck with the token already verified
// once: what a tracker pays per re-announce.
func BenchmarkCheckCached(b *testing.B) {
	pub := keyOf("pub")
	v := NewVerifier([]manifest.PublicKey{manifest.PublicOf(pub)}, &core.ManualClock{T: t0.Add(time.Minute)}).WithCache(1024)
	id := contentOf("bench")
	tok := mustIssue(b, pub, base(ContentScope(id)))
	subj := Subject{Content: id, Tenant: "tenant-a"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Check(tok, subj); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTokenCacheShardedBounded: a cache big enough to be split into shards
// still never holds more than its size, and a token of the same length as
// a cached one but not it is no hit: its signature is verified (and fails).
func TestTokenCacheShardedBounded(t *testing.T) {
	pub := keyOf("pub")
	v := NewVerifier([]manifest.PublicKey{manifest.PublicOf(pub)}, &core.ManualClock{T: t0.Add(time.Minute)}).WithCache(core.ShardedMin)
	if len(v.verified.shards) != core.Shards {
		t.Fatalf("cache of %d in %d shards, want %d", core.ShardedMin, len(v.verified.shards), core.Shards)
	}
	var last string
	for i := range 3 * core.ShardedMin {
		c := base(AnyScope())
		c.Region = fmt.Sprint("r", i)
		last = mustIssue(t, pub, c)
		if _, err := v.Check(last, Subject{Publisher: manifest.PublicOf(pub)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.verified.Len(); n > core.ShardedMin || n < core.ShardedMin/2 {
		t.Fatalf("cache holds %d tokens, want at most its bound %d (and most of it used)", n, core.ShardedMin)
	}
	if _, err := v.Check(last, Subject{Publisher: manifest.PublicOf(pub)}); err != nil {
		t.Fatalf("the last token, cached: %v", err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(last)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1 // the signature's last byte
	forged := base64.RawURLEncoding.EncodeToString(raw)
	if _, err := v.Check(forged, Subject{Publisher: manifest.PublicOf(pub)}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a token differing from a cached one in its signature: %v, want ErrBadSignature", err)
	}
}
