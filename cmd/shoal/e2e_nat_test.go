//go:build e2e

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startRelayBin starts shoal relay on loopback with stateDir and returns
// the multiaddr it prints first, and the process.
func startRelayBin(t *testing.T, bin, stateDir, metrics string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin, "relay", "--listen", "/ip4/127.0.0.1/tcp/0", "--state-dir", stateDir, "--metrics", metrics)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case l := <-lines:
		return l, cmd
	case <-time.After(30 * time.Second):
		t.Fatal("shoal relay printed no multiaddr within 30s")
	}
	return "", nil
}

// TestBinaryRelay: shoal relay prints a dialable multiaddr with its peer
// ID, counts reservations on /metrics, keeps that ID across restarts with the same --state-dir, and exits 0
// on SIGTERM; a --private peer given it offers only circuits through it.
func TestBinaryRelay(t *testing.T) {
	bin := buildShoal(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "relay")
	metrics := freePort(t)
	addr, relay := startRelayBin(t, bin, state, metrics)
	if !strings.HasPrefix(addr, "/ip4/127.0.0.1/tcp/") || !strings.Contains(addr, "/p2p/12D3KooW") {
		t.Fatalf("relay printed %q, want /ip4/127.0.0.1/tcp/PORT/p2p/ID", addr)
	}
	_, id, _ := strings.Cut(addr, "/p2p/")

	pub, _, _ := runBin(t, bin, "keygen", "-o", filepath.Join(dir, "k.pem"))
	gw := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	peer := exec.CommandContext(ctx, bin, "peer", "--cache", filepath.Join(dir, "cache"), "--origin", "http://127.0.0.1:1",
		"--trust", strings.TrimSpace(pub), "--gateway", gw, "--relay", addr, "--private")
	if err := peer.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { peer.Process.Kill(); peer.Wait() }()
	var st struct {
		Addrs []string `json:"addrs"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://%s/api/status", gw))
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if err == nil && len(st.Addrs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("private peer offers no address within 30s (%v): no relay slot", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, a := range st.Addrs {
		if !strings.HasPrefix(a, addr+"/p2p-circuit") {
			t.Errorf("private peer offers %s, want only circuits through %s", a, addr)
		}
	}

	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "libp2p_relaysvc_reservations_total") {
		t.Errorf("relay /metrics has no reservation counter:\n%.2000s", body)
	}

	relay.Process.Signal(syscall.SIGTERM)
	if err := relay.Wait(); err != nil {
		t.Fatalf("relay after SIGTERM: %v", err)
	}
	addr2, _ := startRelayBin(t, bin, state, freePort(t))
	if _, id2, _ := strings.Cut(addr2, "/p2p/"); id2 != id {
		t.Fatalf("relay restarted with the same --state-dir as %s, want %s", id2, id)
	}
}
