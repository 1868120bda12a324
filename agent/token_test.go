package agent

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/token"
)

func testToken(t *testing.T, tenant string) string {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	s, err := token.Issue(priv, token.Claims{Tenant: tenant, Scope: token.AnyScope(), NotBefore: time.Now(), Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokenFileIsReadAgain: a token file's new contents replace the token
// (a refresh needs no restart); contents that are not a token leave the
// last good one in place.
func TestTokenFileIsReadAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	first, second := testToken(t, "a"), testToken(t, "b")
	if err := os.WriteFile(path, []byte(first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewTokenSource("", path)
	if err != nil || s.Token() != first {
		t.Fatalf("NewTokenSource = %v; token %q", err, s.Token())
	}
	os.WriteFile(path, []byte(second), 0o600)
	if err := s.reload(); err != nil || s.Token() != second {
		t.Fatalf("after rewriting the file: %v; token is the new one: %v", err, s.Token() == second)
	}
	os.WriteFile(path, []byte("half-written"), 0o600)
	if err := s.reload(); !errors.Is(err, ErrBadInput) || s.Token() != second {
		t.Fatalf("garbage in the file: %v; token kept: %v", err, s.Token() == second)
	}
	if _, err := NewTokenSource(first, path); err == nil {
		t.Error("accepted both a token and a token file")
	}
	if _, err := NewTokenSource("", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("accepted a missing token file")
	}
}
