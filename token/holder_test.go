package token

import (
	"errors"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

// TestCheckHolderIgnoresScopeOnly: a token of any scope names its tenant
// for telemetry, while its signer, validity window and peer binding are
// checked as for an announce.
func TestCheckHolderIgnoresScopeOnly(t *testing.T) {
	pub := keyOf("pub")
	clk := &core.ManualClock{T: t0.Add(time.Minute)}
	v := NewVerifier([]manifest.PublicKey{manifest.PublicOf(pub)}, clk)
	content := mustIssue(t, pub, base(ContentScope(contentOf("a"))))
	c, err := v.CheckHolder(content, "12D3KooWany")
	if err != nil || c.Tenant != "tenant-a" {
		t.Fatalf("a content-scoped token: %v, %+v", err, c)
	}
	bound := base(PrefixScope("shows/"))
	bound.Peer = "12D3KooWbound"
	tok := mustIssue(t, pub, bound)
	if _, err := v.CheckHolder(tok, "12D3KooWbound"); err != nil {
		t.Fatalf("a token bound to its holder: %v", err)
	}
	if _, err := v.CheckHolder(tok, "12D3KooWother"); !errors.Is(err, ErrPeer) {
		t.Fatalf("a token bound to another peer: %v, want ErrPeer", err)
	}
	if _, err := v.CheckHolder(mustIssue(t, keyOf("stranger"), base(AnyScope())), "p"); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("a token of an untrusted key: %v, want ErrUntrusted", err)
	}
	if _, err := v.CheckHolder("", "p"); !errors.Is(err, ErrMissing) {
		t.Fatalf("no token: %v, want ErrMissing", err)
	}
	clk.T = t0.Add(2 * time.Hour)
	if _, err := v.CheckHolder(content, "p"); !errors.Is(err, ErrExpired) {
		t.Fatalf("an expired token: %v, want ErrExpired", err)
	}
}
