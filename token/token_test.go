package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// keyOf derives a deterministic key from a name, so failures reproduce.
func keyOf(name string) ed25519.PrivateKey {
	seed := core.SumSHA256([]byte("token test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func contentOf(name string) core.ContentID { return core.ContentID(core.SumSHA256([]byte(name))) }

func mustIssue(t testing.TB, priv ed25519.PrivateKey, c Claims) string {
	t.Helper()
	s, err := Issue(priv, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func base(scope Scope) Claims {
	return Claims{Tenant: "tenant-a", Scope: scope, NotBefore: t0, Expiry: t0.Add(time.Hour)}
}

func TestRoundTrip(t *testing.T) {
	pub := keyOf("pub")
	dsvc := keyOf("svc")
	del, err := Delegate(pub, Delegation{Tenant: "tenant-a", Scope: PrefixScope("news/"), Delegate: manifest.PublicOf(dsvc), Expiry: t0.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeDelegation(del)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Claims{
		base(ContentScope(contentOf("a"))),
		{Tenant: "t", Scope: ChannelScope(manifest.ChannelIDOf(manifest.PublicOf(pub), "live")), Region: "eu-west", Peer: "12D3KooWabc", NotBefore: t0, Expiry: t0.Add(time.Minute)},
		base(PrefixScope("")),
		base(PrefixScope(strings.Repeat("é", 127))),
		base(AnyScope()),
	} {
		s := mustIssue(t, pub, c)
		tok, err := Decode(s)
		if err != nil {
			t.Fatalf("%v: %v", c.Scope, err)
		}
		if tok.Encode() != s || tok.Issuer != manifest.PublicOf(pub) || tok.Scope != c.Scope || tok.Tenant != c.Tenant ||
			tok.Region != c.Region || tok.Peer != c.Peer || !tok.NotBefore.Equal(c.NotBefore) || !tok.Expiry.Equal(c.Expiry) {
			t.Fatalf("round trip of %+v gave %+v", c, tok.Claims)
		}
	}
	c := base(PrefixScope("news/today/"))
	c.Delegation = d
	s := mustIssue(t, dsvc, c)
	tok, err := Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Delegation == nil || tok.Delegation.Publisher != manifest.PublicOf(pub) || tok.Delegation.Scope.Prefix != "news/" {
		t.Fatalf("delegation lost in round trip: %+v", tok.Delegation)
	}
	if n := len(s); n > MaxPrinted {
		t.Fatalf("delegated token is %d characters, max %d", n, MaxPrinted)
	}
}

func TestCheck(t *testing.T) {
	pub, other, svc := keyOf("pub"), keyOf("other"), keyOf("svc")
	rotated := keyOf("rotated")
	cid := contentOf("movie")
	clk := &core.ManualClock{T: t0.Add(10 * time.Minute)}
	v := NewVerifier([]manifest.PublicKey{manifest.PublicOf(pub), manifest.PublicOf(rotated)}, clk)
	subj := Subject{Content: cid, Name: "news/today/movie", Publisher: manifest.PublicOf(pub), Peer: "12D3KooWpeerA", Tenant: "tenant-a"}
	del := func(scope Scope, exp time.Time, signer ed25519.PrivateKey) *Delegation {
		s, err := Delegate(signer, Delegation{Tenant: "tenant-a", Scope: scope, Delegate: manifest.PublicOf(svc), Expiry: exp})
		if err != nil {
			t.Fatal(err)
		}
		d, err := DecodeDelegation(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	with := func(f func(*Claims)) Claims { c := base(ContentScope(cid)); f(&c); return c }
	for _, tc := range []struct {
		name   string
		signer ed25519.PrivateKey
		claims Claims
		subj   func(*Subject)
		want   error // nil: accepted
	}{
		{"valid content token", pub, base(ContentScope(cid)), nil, nil},
		{"second trusted key", rotated, base(ContentScope(cid)), func(s *Subject) { s.Publisher = manifest.PublicOf(rotated) }, nil},
		{"another trusted publisher's content", rotated, base(ContentScope(cid)), nil, ErrScope},
		{"any scope, publisher unknown", pub, base(AnyScope()), func(s *Subject) { s.Publisher = manifest.PublicKey{} }, ErrNeedName},
		{"untrusted key", other, base(ContentScope(cid)), nil, ErrUntrusted},
		{"expired", pub, with(func(c *Claims) { c.Expiry = t0.Add(time.Minute) }), nil, ErrExpired},
		{"within skew after expiry", pub, with(func(c *Claims) { c.Expiry = t0.Add(10*time.Minute - DefaultSkew/2) }), nil, nil},
		{"not yet valid", pub, with(func(c *Claims) { c.NotBefore = t0.Add(time.Hour); c.Expiry = t0.Add(2 * time.Hour) }), nil, ErrNotYetValid},
		{"other tenant", pub, with(func(c *Claims) { c.Tenant = "tenant-b" }), nil, ErrTenant},
		{"other content", pub, base(ContentScope(contentOf("other"))), nil, ErrScope},
		{"channel token for a content", pub, base(ChannelScope(manifest.ChannelID{1})), nil, ErrScope},
		{"channel token for its channel", pub, base(ChannelScope(manifest.ChannelID{1})), func(s *Subject) { s.Channel = manifest.ChannelID{1} }, nil},
		{"prefix match", pub, base(PrefixScope("news/")), nil, nil},
		{"prefix mismatch", pub, base(PrefixScope("sport/")), nil, ErrScope},
		{"prefix without name", pub, base(PrefixScope("news/")), func(s *Subject) { s.Name = "" }, ErrNeedName},
		{"prefix of another publisher's content", rotated, base(PrefixScope("news/")), nil, ErrScope},
		{"any scope", pub, base(AnyScope()), nil, nil},
		{"bound to this peer", pub, with(func(c *Claims) { c.Peer = "12D3KooWpeerA" }), nil, nil},
		{"bound to another peer", pub, with(func(c *Claims) { c.Peer = "12D3KooWpeerB" }), nil, ErrPeer},
		{"region inside", pub, with(func(c *Claims) { c.Region = "eu" }), func(s *Subject) { s.Regions = []string{"us", "eu"} }, nil},
		{"region outside", pub, with(func(c *Claims) { c.Region = "us" }), func(s *Subject) { s.Regions = []string{"eu"} }, ErrRegion},
		{"no region for a restricted content", pub, base(ContentScope(cid)), func(s *Subject) { s.Regions = []string{"eu"} }, ErrRegion},
		{"delegated within limits", svc, with(func(c *Claims) {
			c.Scope = PrefixScope("news/today/")
			c.Delegation = del(PrefixScope("news/"), t0.Add(time.Hour), pub)
		}), nil, nil},
		{"delegated content token inside the delegation's prefix", svc, with(func(c *Claims) {
			c.Delegation = del(PrefixScope("news/"), t0.Add(time.Hour), pub)
		}), nil, nil},
		{"delegated beyond the delegation's prefix", svc, with(func(c *Claims) {
			c.Scope = AnyScope()
			c.Delegation = del(PrefixScope("sport/"), t0.Add(time.Hour), pub)
		}), nil, ErrScope},
		{"delegation expired", svc, with(func(c *Claims) {
			c.Delegation = del(AnyScope(), t0.Add(time.Minute), pub)
		}), nil, ErrDelegation},
		{"delegation by an untrusted publisher", svc, with(func(c *Claims) {
			c.Delegation = del(AnyScope(), t0.Add(time.Hour), other)
		}), nil, ErrUntrusted},
		{"delegated key signing without its delegation", svc, base(ContentScope(cid)), nil, ErrUntrusted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := subj
			if tc.subj != nil {
				tc.subj(&s)
			}
			c, err := v.Check(mustIssue(t, tc.signer, tc.claims), s)
			if tc.want == nil {
				if err != nil || c == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if Reason(err) == "error" || Reason(err) == "" {
				t.Fatalf("no audit reason for %v", err)
			}
		})
	}
	if _, err := v.Check("", subj); !errors.Is(err, ErrMissing) {
		t.Fatalf("empty token: %v", err)
	}
}

func TestCheckErrorsSayWhat(t *testing.T) {
	pub := keyOf("pub")
	v := NewVerifier([]manifest.PublicKey{manifest.PublicOf(pub)}, &core.ManualClock{T: t0.Add(2 * time.Hour)})
	_, err := v.Check(mustIssue(t, pub, base(AnyScope())), Subject{})
	if err == nil || !strings.Contains(err.Error(), "expired at 2026-11-30T13:00:00Z") {
		t.Fatalf("expired token: %v, want the expiry time in the message", err)
	}
}

func TestForgedSignature(t *testing.T) {
	pub := keyOf("pub")
	v := NewVerifier([]manifest.PublicKey{manifest.PublicOf(pub)}, &core.ManualClock{T: t0})
	s := mustIssue(t, pub, base(AnyScope()))
	b, _ := base64.RawURLEncoding.DecodeString(s)
	b[2+32+1] ^= 1 // a tenant byte: still decodes, no longer verifies
	_, err := v.Check(base64.RawURLEncoding.EncodeToString(b), Subject{})
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered token: %v", err)
	}
}

func TestDecodeMalformedSaysWhere(t *testing.T) {
	s := mustIssue(t, keyOf("pub"), base(AnyScope()))
	b, _ := base64.RawURLEncoding.DecodeString(s)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated", b[:40], "at byte"},
		{"bad version", append([]byte{9}, b[1:]...), "at byte 0: token version 9"},
		{"trailing", append(append([]byte(nil), b...), 0), "after the signature"},
		{"too long", make([]byte, MaxTokenBytes+1), "at most"},
	} {
		_, err := DecodeBinary(tc.b)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrMalformed mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := Decode("not a token!"); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage: %v", err)
	}
}

func TestIssueRefusesBadClaims(t *testing.T) {
	pub := keyOf("pub")
	for _, c := range []Claims{
		{Tenant: "", Scope: AnyScope(), NotBefore: t0, Expiry: t0.Add(time.Hour)},
		{Tenant: "a b", Scope: AnyScope(), NotBefore: t0, Expiry: t0.Add(time.Hour)},
		{Tenant: "a", Scope: AnyScope(), NotBefore: t0, Expiry: t0},
		{Tenant: "a", Scope: PrefixScope(strings.Repeat("x", MaxPrefix+1)), NotBefore: t0, Expiry: t0.Add(time.Hour)},
		{Tenant: "a", Scope: AnyScope(), Region: "eu west", NotBefore: t0, Expiry: t0.Add(time.Hour)},
	} {
		if _, err := Issue(pub, c); err == nil {
			t.Errorf("issued a token for %+v", c)
		}
	}
}
