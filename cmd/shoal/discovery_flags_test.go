package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDiscoveryFlagsRefuseBadInput: a bad --bootstrap or --pex-interval is
// a usage error (exit 2) naming the flag and the value, on peer and get.
func TestDiscoveryFlagsRefuseBadInput(t *testing.T) {
	dir := t.TempDir()
	_, pub := keyFile(t, dir, "pub")
	for _, cmd := range []string{"peer", "get"} {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--bootstrap", "/ip4/127.0.0.1/tcp/4001"}, `--bootstrap: bad DHT bootstrap address "/ip4/127.0.0.1/tcp/4001": want a multiaddr ending in /p2p/PEERID`},
			{[]string{"--bootstrap", "nope"}, `--bootstrap: bad DHT bootstrap address "nope"`},
			{[]string{"--pex-interval", "-1s"}, "--pex-interval -1s"},
		} {
			args := append([]string{cmd, "--cache", filepath.Join(dir, "c"), "--origin", "http://127.0.0.1:1", "--trust", pub.String()}, tc.args...)
			if cmd == "get" {
				args = append(args, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
			}
			_, e, code := shoal(t, args...)
			if code != 2 || !strings.Contains(e, tc.want) {
				t.Errorf("%s %v: exit %d, stderr %q; want exit 2 mentioning %q", cmd, tc.args, code, e, tc.want)
			}
		}
	}
}
