package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestTrackerRefusesBadSessionFlags: a short or missing key file and a
// negative ticket lifetime are refused at start, naming the flag.
func TestTrackerRefusesBadSessionFlags(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	writeFile(t, short, "only sixteen byt")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--session-key-file", short}, []string{"--session-key-file", "16 bytes, want at least 32"}},
		{[]string{"--session-key-file", filepath.Join(dir, "absent")}, []string{"--session-key-file", "absent"}},
		{[]string{"--session-ttl", "-1s"}, []string{"--session-ttl"}},
	} {
		_, e, code := shoal(t, append([]string{"tracker", "--listen", "127.0.0.1:0"}, tc.args...)...)
		for _, w := range tc.want {
			if code == 0 || !strings.Contains(e, w) {
				t.Errorf("tracker %v: exit %d, stderr %q; want an error mentioning %q", tc.args, code, e, w)
			}
		}
	}
}
