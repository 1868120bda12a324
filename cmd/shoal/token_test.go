package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/token"
)

// shoal runs the binary's entry point in-process.
func shoal(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

func keyFile(t *testing.T, dir, name string) (string, manifest.PublicKey) {
	t.Helper()
	path := filepath.Join(dir, name+".pem")
	out, e, code := shoal(t, "keygen", "-o", path)
	if code != 0 {
		t.Fatalf("keygen: %s", e)
	}
	pub, err := manifest.ParsePublicKey(out)
	if err != nil {
		t.Fatal(err)
	}
	return path, pub
}

// TestTokenIssueVerifies: what `shoal token issue` prints verifies under the
// publisher key for what it names, directly and through a delegation, and
// `shoal token inspect` prints its claims.
func TestTokenIssueVerifies(t *testing.T) {
	dir := t.TempDir()
	pubFile, pub := keyFile(t, dir, "pub")
	svcFile, svc := keyFile(t, dir, "svc")
	id := core.ContentID(core.SumSHA256([]byte("content")))
	v := token.NewVerifier([]manifest.PublicKey{pub}, nil)

	out, e, code := shoal(t, "token", "issue", "--key", pubFile, "--tenant", "acme", "--content", id.String(), "--region", "eu", "--ttl", "2h")
	if code != 0 {
		t.Fatalf("issue: exit %d: %s", code, e)
	}
	c, err := v.Check(strings.TrimSpace(out), token.Subject{Content: id, Tenant: "acme", Regions: []string{"eu"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Expiry.Sub(c.NotBefore); d != 2*time.Hour {
		t.Errorf("--ttl 2h gave a %v window", d)
	}
	js, e, code := shoal(t, "token", "inspect", strings.TrimSpace(out))
	var claims map[string]any
	if code != 0 || json.Unmarshal([]byte(js), &claims) != nil || claims["tenant"] != "acme" || claims["region"] != "eu" {
		t.Fatalf("inspect: exit %d: %s%s", code, js, e)
	}

	del, e, code := shoal(t, "token", "delegate", "--key", pubFile, "--tenant", "acme", "--to", svc.String(), "--prefix", "acme/")
	if code != 0 {
		t.Fatalf("delegate: exit %d: %s", code, e)
	}
	delFile := filepath.Join(dir, "acme.delegation")
	writeFile(t, delFile, del)
	out, e, code = shoal(t, "token", "issue", "--key", svcFile, "--delegation", delFile, "--tenant", "acme", "--prefix", "acme/shows/")
	if code != 0 {
		t.Fatalf("delegated issue: exit %d: %s", code, e)
	}
	if _, err := v.Check(strings.TrimSpace(out), token.Subject{Name: "acme/shows/one", Publisher: pub, Tenant: "acme"}); err != nil {
		t.Fatalf("delegated token: %v", err)
	}
}

// TestTokenCommandsRefuseBadInput: each mistake is refused with a message
// naming the flag at fault.
func TestTokenCommandsRefuseBadInput(t *testing.T) {
	dir := t.TempDir()
	pubFile, _ := keyFile(t, dir, "pub")
	svcFile, svc := keyFile(t, dir, "svc")
	del, _, _ := shoal(t, "token", "delegate", "--key", pubFile, "--tenant", "acme", "--to", svc.String())
	delFile := filepath.Join(dir, "d")
	writeFile(t, delFile, del)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"issue", "--key", pubFile, "--tenant", "acme"}, "want one of --content"},
		{[]string{"issue", "--key", pubFile, "--tenant", "acme", "--prefix", "a", "--any"}, "only one of"},
		{[]string{"issue", "--key", pubFile, "--tenant", "a b", "--any"}, "--tenant"},
		{[]string{"issue", "--key", pubFile, "--tenant", "acme", "--content", "nope"}, "--content"},
		{[]string{"issue", "--key", pubFile, "--tenant", "acme", "--any", "--not-before", "tomorrow"}, "--not-before"},
		{[]string{"issue", "--key", svcFile, "--delegation", delFile, "--tenant", "other", "--any"}, `delegation is for tenant "acme"`},
		{[]string{"issue", "--key", svcFile, "--delegation", delFile, "--tenant", "acme", "--any", "--ttl", "9000h"}, "outlive its delegation"},
		{[]string{"issue", "--key", pubFile, "--delegation", delFile, "--tenant", "acme", "--any"}, "delegation names key"},
		{[]string{"delegate", "--key", pubFile, "--tenant", "acme", "--to", "short"}, "--to"},
		{[]string{"inspect", "not-a-token"}, "not a token"},
		{[]string{"frobnicate"}, "unknown token command"},
	} {
		_, e, code := shoal(t, append([]string{"token"}, tc.args...)...)
		if code == 0 || !strings.Contains(e, tc.want) {
			t.Errorf("token %v: exit %d, stderr %q; want an error mentioning %q", tc.args, code, e, tc.want)
		}
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
