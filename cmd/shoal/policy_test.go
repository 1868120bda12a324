package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/control"
)

// TestPolicySignShowFile: what `shoal policy sign` prints decodes under the
// operator key with the serial asked for, and `shoal policy show FILE`
// prints it verified.
func TestPolicySignShowFile(t *testing.T) {
	dir := t.TempDir()
	key, pub := keyFile(t, dir, "op")
	in := filepath.Join(dir, "p.json")
	writeFile(t, in, `{"serial":2,"rules":[{"match":{"tenant":"acme"},"p2p":"leech-only","consent":true}]}`)
	out, e, code := shoal(t, "policy", "sign", "--key", key, "--serial", "7", in)
	if code != 0 {
		t.Fatalf("sign: exit %d: %s", code, e)
	}
	p, err := control.Decode([]byte(strings.TrimSuffix(out, "\n")), pub)
	if err != nil || p.Serial != 7 || len(p.Rules) != 1 || p.Rules[0].P2P != control.LeechOnly {
		t.Fatalf("signed policy: %+v, %v; want serial 7 (the flag's) with the file's rule", p, err)
	}
	signed := filepath.Join(dir, "s.json")
	writeFile(t, signed, out)
	out, e, code = shoal(t, "policy", "show", "--operator-key", pub.String(), signed)
	if code != 0 || !strings.Contains(out, "policy 7 by operator "+pub.String()) || !strings.Contains(out, "rule 1: tenant=acme → p2p leech-only, consent required") {
		t.Fatalf("show: exit %d\n%s%s", code, out, e)
	}
	_, other := keyFile(t, dir, "other")
	if _, e, code := shoal(t, "policy", "show", "--operator-key", other.String(), signed); code != 1 || !strings.Contains(e, "not signed by a trusted operator key") {
		t.Fatalf("show under another key: exit %d %s, want 1 and untrusted", code, e)
	}
}

func TestPolicyCommandsRefuseBadInput(t *testing.T) {
	dir := t.TempDir()
	key, _ := keyFile(t, dir, "op")
	noSerial := filepath.Join(dir, "noserial.json")
	writeFile(t, noSerial, `{"rules":[{"p2p":"off"}]}`)
	badMode := filepath.Join(dir, "badmode.json")
	writeFile(t, badMode, `{"serial":1,"rules":[{"p2p":"of"}]}`)
	unknown := filepath.Join(dir, "unknown.json")
	writeFile(t, unknown, `{"serial":1,"rulez":[]}`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sign", noSerial}, "want --key"},
		{[]string{"sign", "--key", key, noSerial}, "no serial"},
		{[]string{"sign", "--key", key, badMode}, `rule 1 p2p "of"`},
		{[]string{"sign", "--key", key, unknown}, `unknown field "rulez"`},
		{[]string{"push", "--tracker", "http://127.0.0.1:1", noSerial}, "want --tracker, --admin-token"},
		{[]string{"push", "--tracker", "ftp://x", "--admin-token", "t", noSerial}, "--tracker"},
		{[]string{"push", "--tracker", "http://127.0.0.1:1", "--admin-token", "t", noSerial}, "noserial.json"},
		{[]string{"show"}, "want --tracker URL or one signed policy file"},
		{[]string{"frobnicate"}, "unknown policy command"},
	} {
		_, e, code := shoal(t, append([]string{"policy"}, tc.args...)...)
		if code == 0 || !strings.Contains(e, tc.want) {
			t.Errorf("policy %v: exit %d, stderr %q; want an error mentioning %q", tc.args, code, e, tc.want)
		}
	}
	if _, e, code := shoal(t, "tracker", "--policy", noSerial); code != 2 || !strings.Contains(e, "--policy needs --operator-key") {
		t.Errorf("tracker --policy without --operator-key: exit %d %q", code, e)
	}
}
