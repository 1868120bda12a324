//go:build e2e

package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRevokedKeyIsRefusedAndPurged: a peer seeds content X signed by key
// K1. The publisher rotates to K2 (the peer trusts both) and revokes K1 with
// `shoal revoke`. Within a few polls of the origin the peer answers 410 for
// X with none of its bytes, holds none of its chunks, a `shoal get` of X
// fails with one clear line, a content signed by K2 still works, and the
// audit log has a line for the revocation.
func TestRevokedKeyIsRefusedAndPurged(t *testing.T) {
	r := newFxRig(t)
	x := r.publish("x", fxFile{"x.bin", 3 << 20, 9101})
	// The new key signs content Y.
	k2 := filepath.Join(r.dir, "k2.pem")
	out, e, code := runBin(t, r.bin, "keygen", "-o", k2)
	if code != 0 {
		t.Fatalf("keygen exit %d: %s", code, e)
	}
	pub2 := strings.TrimSpace(out)
	ySrc := filepath.Join(r.dir, "src-y")
	os.MkdirAll(ySrc, 0o755)
	ySum, err := writeSeeded(filepath.Join(ySrc, "y.bin"), 1<<20, 9102)
	if err != nil {
		t.Fatal(err)
	}
	out, e, code = runBin(t, r.bin, "publish", "--key", k2, "--out", r.layout, "--chunk-size", "256KiB", "--name", "y", ySrc)
	if code != 0 {
		t.Fatalf("publish with K2 exit %d: %s", code, e)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	yID := lines[len(lines)-1]

	r.startOrigin()
	auditLog := filepath.Join(r.dir, "peer-audit.log")
	// The rig passes --trust K1; K2 comes from a trust file.
	trustFile := filepath.Join(r.dir, "trusted-keys")
	if err := os.WriteFile(trustFile, []byte("# publisher keys\n"+pub2+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	peer := r.startPeer("seed", "--trust-file", trustFile, "--revocation-poll", "1s", "--audit-log", auditLog)
	wantWhole(t, "X before the revocation", fxDo(t, http.MethodGet, peer.gw+"/c/"+x.id+"/x.bin"), x.files["x.bin"])
	peer.waitComplete(t, x.id)
	if n := countChunkFiles(t, peer.cache); n != 12 {
		t.Fatalf("the seed holds %d chunk files, want X's 12", n)
	}

	out, e, code = runBin(t, r.bin, "revoke", "--key", k2, "--out", r.layout, "--revoke-key", r.pub)
	if code != 0 {
		t.Fatalf("revoke exit %d: %s", code, e)
	}
	t.Logf("revoke: %s", strings.TrimSpace(out))
	// A stock static server sees a plain file.
	if _, err := os.Stat(filepath.Join(r.layout, "revocations", pub2)); err != nil {
		t.Fatalf("no revocation list in the layout: %v", err)
	}

	waitFor(t, "X refused after the revocation", 30*time.Second, func() (bool, string) {
		resp := fxDo(t, http.MethodGet, peer.gw+"/c/"+x.id+"/x.bin")
		return resp.status == http.StatusGone, string(resp.body)
	})
	resp := fxDo(t, http.MethodGet, peer.gw+"/c/"+x.id+"/x.bin")
	if resp.status != http.StatusGone || resp.n > 1024 || !strings.Contains(string(resp.body), "revoked") {
		t.Fatalf("GET X after the revocation: status %d, %d bytes %q; want 410 and a short error naming the revocation", resp.status, resp.n, resp.body)
	}
	waitFor(t, "X's chunks purged", 30*time.Second, func() (bool, string) {
		n := countChunkFiles(t, peer.cache)
		return n == 0, strings.Repeat("chunk ", n)
	})
	if _, ok := peer.swarm(t, x.id); ok {
		t.Fatal("the peer still runs X's swarm")
	}
	if _, err := os.Stat(filepath.Join(peer.cache, "manifests", x.id)); !os.IsNotExist(err) {
		t.Fatalf("X's manifest is still in the cache: %v", err)
	}

	// A one-shot get of X fails with one line; nothing is written.
	got := filepath.Join(r.dir, "got-x")
	_, e, code = runBin(t, r.bin, "get", "--quiet", "--cache", filepath.Join(r.dir, "get-cache"), "--origin", r.originURL,
		"--trust", r.pub+","+pub2, "-o", got, x.id)
	if code == 0 || strings.Count(strings.TrimSpace(e), "\n") != 0 || !strings.Contains(e, "revoked") {
		t.Fatalf("get of revoked X: exit %d, stderr %q; want a failure, one line, naming the revocation", code, e)
	}
	if _, err := os.Stat(got); !os.IsNotExist(err) {
		t.Fatal("the failed get left an output")
	}

	// K2's content still works.
	wantWhole(t, "Y signed by K2", fxDo(t, http.MethodGet, peer.gw+"/c/"+yID+"/y.bin"), fxSource{1 << 20, ySum})

	waitFor(t, "an audit line for the revocation", 10*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(auditLog)
		return strings.Contains(string(b), `"kind":"content.revoked"`) && strings.Contains(string(b), x.id), string(b)
	})
}
