//go:build e2e

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPeerDailyIdentity: `shoal peer --identity daily` keeps its seed 0600
// in the cache directory and no fixed key, and a restart the same day comes
// back with the same peer ID; --dscp takes a class name, and a bad value is
// refused with a line naming the flag.
func TestPeerDailyIdentity(t *testing.T) {
	r := newFxRig(t)
	r.publish("one", fxFile{path: "a.bin", size: 64 << 10, seed: 1})
	r.startOrigin()
	cache := filepath.Join(r.dir, "cache-daily")
	p := r.startPeerCache("daily", cache, "--identity", "daily", "--dscp", "af11")
	first := p.status(t).Peer
	p.stop(t)
	fi, err := os.Stat(filepath.Join(cache, "identity.seed"))
	if err != nil {
		t.Fatalf("no identity seed after a daily peer ran: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("identity seed mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(cache, "peer.key")); err == nil {
		t.Error("a daily peer wrote a fixed peer.key")
	}
	again := r.startPeerCache("daily-again", cache, "--identity", "daily")
	if second := again.status(t).Peer; second != first {
		t.Errorf("restarted daily peer is %s, was %s the same day", second, first)
	}
	again.stop(t)

	_, stderr, code := runBin(t, r.bin, "peer", "--cache", filepath.Join(r.dir, "cache-bad"), "--origin", r.originURL, "--trust", r.pub, "--dscp", "cs9")
	if code == 0 || !strings.Contains(stderr, "--dscp") {
		t.Errorf("--dscp cs9: exit %d, stderr %q; want a refusal naming --dscp", code, stderr)
	}
}
