package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyFlagsRefuseBadInput: a bad --p2p, --metered, --on-battery or
// --operator-key is a usage error (exit 2) naming the flag and the value,
// on peer and get, and so is a bad value in an environment twin.
func TestPolicyFlagsRefuseBadInput(t *testing.T) {
	dir := t.TempDir()
	_, pub := keyFile(t, dir, "pub")
	for _, cmd := range []string{"peer", "get"} {
		for _, tc := range []struct {
			args []string
			env  string // NAME=VALUE
			want string
		}{
			{args: []string{"--p2p", "half"}, want: `--p2p: P2P mode "half": want on, leech-only or off`},
			{args: []string{"--metered", "maybe"}, want: `--metered: "maybe": want auto, yes or no`},
			{args: []string{"--on-battery", "1"}, want: `--on-battery: "1": want auto, yes or no`},
			{args: []string{"--operator-key", "not-a-key"}, want: `-operator-key: bad publisher key: "not-a-key"`},
			{env: "SHOAL_" + strings.ToUpper(cmd) + "_P2P=sometimes", want: `P2P mode "sometimes"`},
		} {
			t.Run(cmd+" "+strings.Join(tc.args, " ")+tc.env, func(t *testing.T) {
				args := append([]string{cmd, "--cache", filepath.Join(dir, "c"), "--origin", "http://127.0.0.1:1", "--trust", pub.String()}, tc.args...)
				if cmd == "get" {
					args = append(args, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
				}
				if tc.env != "" {
					name, value, _ := strings.Cut(tc.env, "=")
					t.Setenv(name, value) // restored when the subtest ends
				}
				_, e, code := shoal(t, args...)
				if code != 2 || !strings.Contains(e, tc.want) {
					t.Errorf("exit %d, stderr %q; want exit 2 mentioning %q", code, e, tc.want)
				}
			})
		}
	}
}
