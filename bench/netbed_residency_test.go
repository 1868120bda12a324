//go:build netbed

package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNetbedResidency: a content published for region eu, on real shoal
// processes in network namespaces the test makes. A tracker that requires
// tokens (--trust) and reads the content's signed policy from the origin
// (--origin) matches only peers whose token says eu. An eu seed (in its own
// namespace) fetches from the origin; an eu getter whose origin is
// unreachable completes from that seed, byte-identical; a us getter, with a
// valid token of the same tenant but region us and the same unreachable
// origin, is refused by the tracker, learns no peer, fails, and holds no
// byte of the content. Behind the netbed build tag (root, iproute2).
func TestNetbedResidency(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the netbed needs root (network namespaces); CI runs as root")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "shoal")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/shoal").CombinedOutput(); err != nil {
		t.Fatalf("build shoal: %v\n%s", err, out)
	}
	shoal := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("shoal %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	data := make([]byte, 4<<20)
	rand.Read(data)
	src := filepath.Join(dir, "film.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "publisher.pem")
	pub := shoal("keygen", "-o", key)
	layout := filepath.Join(dir, "www")
	ids := strings.Fields(shoal("publish", "--key", key, "--out", layout, "--region", "eu", src))
	id := ids[len(ids)-1]
	euTok := shoal("token", "issue", "--key", key, "--tenant", "acme", "--content", id, "--region", "eu", "--ttl", "1h")
	usTok := shoal("token", "issue", "--key", key, "--tenant", "acme", "--content", id, "--region", "us", "--ttl", "1h")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	nb, err := newNetbedNet(ctx, 3, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.close()
	originURL := "http://" + netbedOriginAddr + ":8080"
	trackerURL := "http://" + netbedOriginAddr + ":7070"
	deadOrigin := "http://" + netbedOriginAddr + ":9" // nothing listens there
	origin, err := startIn(nb.origin, bin, nil, "origin", "--dir", layout, "--listen", netbedOriginAddr+":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer origin.stop(5 * time.Second)
	auditLog := filepath.Join(dir, "tracker-audit.log")
	tracker, err := startIn(nb.origin, bin, nil, "tracker", "--listen", netbedOriginAddr+":7070",
		"--trust", pub, "--origin", originURL, "--interval", "2s", "--audit-log", auditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer tracker.stop(5 * time.Second)
	for _, w := range []struct {
		url string
		p   *proc
	}{{originURL + "/metrics", origin}, {trackerURL + "/metrics", tracker}} {
		if err := waitHTTP(ctx, nb.origin, w.url, w.p); err != nil {
			t.Fatal(err)
		}
	}
	get := func(i int, tok, originURL string, done func()) *proc {
		t.Helper()
		args := []string{"get", "--tracker", trackerURL, "--origin", originURL, "--trust", pub, "--token", tok,
			"--cache", filepath.Join(dir, "cache", nb.recv[i]), "-o", filepath.Join(dir, "out", nb.recv[i]), "--seed-for", "1h", id}
		p, err := startIn(nb.recv[i], bin, func(line string) {
			if done != nil && strings.HasPrefix(line, "progress 100.0%") {
				done()
			}
		}, args...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.stop(5 * time.Second) })
		return p
	}
	wait := func(what string, ch <-chan struct{}, p *proc) {
		t.Helper()
		select {
		case <-ch:
		case <-p.done:
			t.Fatalf("%s exited: %s", what, p.log)
		case <-ctx.Done():
			t.Fatalf("%s: not done in time: %s", what, p.log)
		}
	}
	seeded := make(chan struct{})
	seed := get(0, euTok, originURL, sync1(seeded))
	wait("eu seed", seeded, seed)

	// A us viewer first, while the seed is the only holder: the tracker
	// must not match it with the eu seed, and it has no origin.
	us := get(2, usTok, deadOrigin, nil)
	select {
	case <-us.done:
	case <-ctx.Done():
		t.Fatalf("us getter still running: %s", us.log)
	}
	if code := us.cmd.ProcessState.ExitCode(); code == 0 {
		t.Fatalf("us getter exited 0: %s", us.log)
	}
	if msg := us.log.String(); !strings.Contains(msg, "region") {
		t.Fatalf("us getter's error does not say the tracker refused its region: %s", msg)
	}
	if n := contentBytes(t, filepath.Join(dir, "cache", nb.recv[2])); n != 0 {
		t.Fatalf("us getter's cache holds %d bytes of chunks, want 0", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", nb.recv[2])); !os.IsNotExist(err) {
		t.Fatalf("us getter left an output: %v", err)
	}

	fetched := make(chan struct{})
	eu := get(1, euTok, deadOrigin, sync1(fetched))
	wait("eu getter", fetched, eu)
	got, err := os.ReadFile(filepath.Join(dir, "out", nb.recv[1]))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("eu getter's output: %d bytes, err %v; want the %d published bytes", len(got), err, len(data))
	}
	t.Logf("us getter refused: %s", lastLine(us.log.String()))
	// The tracker says why, in its audit log (written asynchronously).
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(auditLog)
		if bytes.Contains(b, []byte(`"kind":"token.refused"`)) && bytes.Contains(b, []byte("region")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no token.refused line naming the region in the tracker's audit log:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sync1 returns a func that closes ch the first time it is called.
func sync1(ch chan struct{}) func() {
	var done bool
	return func() {
		if !done {
			done = true
			close(ch)
		}
	}
}

// contentBytes sums the sizes of the chunk files (named by their 43-character
// hash) under a cache directory.
func contentBytes(t *testing.T, cache string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(filepath.Join(cache, "chunks"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && len(d.Name()) == 43 {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
