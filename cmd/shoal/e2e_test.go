//go:build e2e

// End-to-end tests of the shoal binary: the interfaces a script relies on
// (exit codes, one-line errors, the content ID as the last line of stdout,
// clean shutdown on SIGTERM). They build the binary and start processes, so
// they sit behind the e2e build tag; scripts/test.sh runs them.
package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func buildShoal(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shoal")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func runBin(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

func TestBinaryPublishOriginGet(t *testing.T) {
	bin := buildShoal(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "k.pem")
	pub, _, code := runBin(t, bin, "keygen", "-o", key)
	if code != 0 {
		t.Fatalf("keygen exit %d", code)
	}
	pub = strings.TrimSpace(pub)
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	payload := bytes.Repeat([]byte("shoal end to end "), 100000)
	os.WriteFile(filepath.Join(src, "sub", "a.bin"), payload, 0o644)
	os.WriteFile(filepath.Join(src, "b.txt"), []byte("hi\n"), 0o644)
	out, errOut, code := runBin(t, bin, "publish", "--key", key, "--out", filepath.Join(dir, "www"), src)
	if code != 0 {
		t.Fatalf("publish exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	id := lines[len(lines)-1]

	addr := freePort(t)
	origin := exec.Command(bin, "origin", "--dir", filepath.Join(dir, "www"), "--listen", addr)
	var originErr bytes.Buffer
	origin.Stderr = &originErr
	if err := origin.Start(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr
	for i := 0; ; i++ {
		if resp, err := http.Get(url + "/metrics"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 200 {
			t.Fatal("origin did not come up")
		}
		time.Sleep(25 * time.Millisecond)
	}

	got := filepath.Join(dir, "got")
	if _, e, code := runBin(t, bin, "get", "--quiet", "--cache", filepath.Join(dir, "cache"), "--origin", url, "--trust", pub, "-o", got, id); code != 0 {
		t.Fatalf("get exit %d: %s", code, e)
	}
	if b, _ := os.ReadFile(filepath.Join(got, "sub", "a.bin")); !bytes.Equal(b, payload) {
		t.Fatal("fetched file differs")
	}

	// A wrong trust key: non-zero, one line on stderr, no output.
	otherKey := filepath.Join(dir, "other.pem")
	other, _, _ := runBin(t, bin, "keygen", "-o", otherKey)
	bad := filepath.Join(dir, "bad")
	_, e, code := runBin(t, bin, "get", "--quiet", "--cache", filepath.Join(dir, "cache2"), "--origin", url, "--trust", strings.TrimSpace(other), "-o", bad, id)
	if code == 0 || strings.Count(strings.TrimSpace(e), "\n") != 0 || !strings.Contains(e, "not signed by the trusted publisher") {
		t.Fatalf("untrusted get: exit %d, stderr %q", code, e)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatal("failed get left an output")
	}
	// Bad input is a usage error (exit 2) naming what is wrong.
	if _, e, code := runBin(t, bin, "get", "--origin", url, "--trust", "nope", id); code != 2 || !strings.Contains(e, "--trust") {
		t.Fatalf("bad --trust: exit %d, stderr %q", code, e)
	}

	// SIGTERM: the origin shuts down cleanly (exit 0).
	origin.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- origin.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("origin after SIGTERM: %v\n%s", err, originErr.String())
		}
	case <-time.After(10 * time.Second):
		origin.Process.Kill()
		t.Fatal("origin did not stop on SIGTERM")
	}
}

func TestBinaryPeerShutsDownOnSIGTERM(t *testing.T) {
	bin := buildShoal(t)
	dir := t.TempDir()
	pub, _, _ := runBin(t, bin, "keygen", "-o", filepath.Join(dir, "k.pem"))
	gw := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peer := exec.CommandContext(ctx, bin, "peer", "--cache", filepath.Join(dir, "cache"), "--origin", "http://127.0.0.1:1",
		"--trust", strings.TrimSpace(pub), "--gateway", gw, "--listen", "/ip4/127.0.0.1/tcp/0")
	stderr, _ := peer.StderrPipe()
	if err := peer.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	up := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "peer up") {
			up = true
			break
		}
	}
	if !up {
		t.Fatal("peer never logged that it is up")
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/api/status", gw))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status: %v", err)
	}
	resp.Body.Close()
	go func() {
		for sc.Scan() {
		}
	}()
	peer.Process.Signal(syscall.SIGTERM)
	if err := peer.Wait(); err != nil {
		t.Fatalf("peer after SIGTERM: %v", err)
	}
}
