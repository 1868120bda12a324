//go:build e2e

package main

import (
	"strconv"
	"strings"
	"testing"
)

// TestBinaryBenchTracker runs `shoal bench tracker` on all three kinds of
// target: in-process with checks off and on, and a child `shoal tracker`
// process (signatures, tokens from the bench's key passed with --trust,
// default rate limits over X-Forwarded-For). A small workload, so the
// assertion is that every announce is answered 200, not a speed.
func TestBinaryBenchTracker(t *testing.T) {
	bin := buildShoal(t)
	const n = 300
	out, errOut, code := runBin(t, bin, "bench", "tracker", "--quiet", "--peers", "40", "--swarms", "8", "--conns", "4",
		"--announces", strconv.Itoa(n), "--duration", "2m", "--targets", "memory,memory+checks,shoal:1:--max-inflight 64")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	rows := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !(strings.HasPrefix(f[0], "memory") || strings.HasPrefix(f[0], "shoal:1:")) {
			continue
		}
		// A spawned target's name has spaces: count the columns from the end.
		ok, refused, failed, ticketed := f[len(f)-8], f[len(f)-7], f[len(f)-6], f[len(f)-5]
		if ok != strconv.Itoa(n) || refused != "0" || failed != "0" {
			t.Errorf("row %q: want %d ok, 0 refused, 0 failed", line, n)
		}
		// The checked targets (the spawned binary with its default
		// --session-ttl included) hand out session tickets: every peer's
		// announces after its first go with one.
		if checked := f[0] != "memory"; (ticketed != "0") != checked {
			t.Errorf("row %q: %s announces sent with a session ticket; want some on a checked target, none on memory", line, ticketed)
		}
		rows++
	}
	if rows != 3 {
		t.Fatalf("%d result rows, want 3:\n%s", rows, out)
	}
	if strings.Contains(out, "first failure") {
		t.Errorf("a failure was reported:\n%s", out)
	}
}

// TestBinaryBenchTrackerRefusesRemoteTargets: the load generator sends
// nowhere but loopback, and says so.
func TestBinaryBenchTrackerRefusesRemoteTargets(t *testing.T) {
	bin := buildShoal(t)
	_, errOut, code := runBin(t, bin, "bench", "tracker", "--targets", "http://198.18.0.1:7070")
	if code == 0 || !strings.Contains(errOut, "loopback") {
		t.Fatalf("exit %d, stderr %q: want a refusal naming loopback", code, errOut)
	}
}
