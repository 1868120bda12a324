//go:build linux && natlab

package bench

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// labPeer is one shoal peer running in the lab.
type labPeer struct {
	labHost
	Private bool
	proc    *proc
	id      string
}

// labStatus is the part of a peer's /api/status the lab reads.
type labStatus struct {
	Peer          string            `json:"peer"`
	Addrs         []string          `json:"addrs"`
	BytesUploaded int64             `json:"bytes_uploaded"`
	BytesPeers    int64             `json:"bytes_from_peers"`
	BytesOrigin   int64             `json:"bytes_from_origin"`
	Conns         map[string]string `json:"conns"`
	Swarms        []struct {
		Complete bool `json:"complete"`
	} `json:"swarms"`
}

// labSwarm is a lab with the public services (origin, tracker, relay)
// running and one content published.
type labSwarm struct {
	t       *testing.T
	lab     *natLab
	bin     string
	dir     string
	content *shoalSide
	sum     [32]byte
	size    int64
	relay   string
	procs   []*proc
}

const (
	labOriginURL  = "http://" + labPubAddr + ":8080"
	labTrackerURL = "http://" + labPubAddr + ":7070"
	labGateway    = "127.0.0.1:7171"
)

// buildShoalForLab builds the shoal binary the lab runs.
func buildShoalForLab(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shoal")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/shoal").CombinedOutput(); err != nil {
		t.Fatalf("build shoal: %v\n%s", err, out)
	}
	return bin
}

// startLabSwarm makes the lab for kinds, publishes size random bytes and
// starts origin, tracker and relay on the public segment.
func startLabSwarm(t *testing.T, kinds []NATKind, size int64, pubUp, peerUp float64) *labSwarm {
	t.Helper()
	labNeedsRoot(t)
	ctx := context.Background()
	s := &labSwarm{t: t, bin: buildShoalForLab(t), dir: t.TempDir(), size: size}
	src := filepath.Join(s.dir, "src", "content.bin")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeRandom(src, 12, size); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	s.sum = sha256.Sum256(b)
	if s.content, err = prepareShoal(ctx, NetbedConfig{Shoal: s.bin, Dir: s.dir, ChunkSize: 256 << 10}, src); err != nil {
		t.Fatal(err)
	}
	if s.lab, err = newNATLab(ctx, kinds, pubUp, peerUp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopAll(s.procs)
		s.lab.close()
	})
	start := func(ns string, lines func(string), args ...string) *proc {
		p, err := startIn(ns, s.bin, lines, args...)
		if err != nil {
			t.Fatal(err)
		}
		s.procs = append(s.procs, p)
		return p
	}
	origin := start(s.lab.pub, nil, "origin", "--dir", s.content.layout, "--listen", labPubAddr+":8080")
	relayAddr := make(chan string, 1)
	relay := start(s.lab.pub, func(line string) {
		if strings.HasPrefix(line, "/ip4/"+labPubAddr+"/tcp/") {
			select {
			case relayAddr <- line:
			default:
			}
		}
	}, "relay", "--lab-network", "--listen", "/ip4/"+labPubAddr+"/tcp/4002,/ip4/"+labPubAddr+"/udp/4002/quic-v1")
	if err := waitHTTP(ctx, s.lab.pub, labOriginURL+"/metrics", origin); err != nil {
		t.Fatal(err)
	}
	select {
	case s.relay = <-relayAddr:
	case <-relay.done:
		t.Fatalf("relay exited: %s", relay.log)
	case <-time.After(30 * time.Second):
		t.Fatalf("relay printed no address within 30s: %s", relay.log)
	}
	// Every open peer is in one /24: no diversity cap. A short interval
	// spreads addresses learnt after the first announce (observed, relay).
	// The tracker hands out circuits through the relay it lists.
	tracker := start(s.lab.pub, nil, "tracker", "--listen", labPubAddr+":7070", "--max-per-prefix", "0", "--interval", "5s", "--relays", s.relay)
	if err := waitHTTP(ctx, s.lab.pub, labTrackerURL+"/metrics", tracker); err != nil {
		t.Fatal(err)
	}
	return s
}

// startPeer starts shoal peer on host h (relay-only mode if private).
func (s *labSwarm) startPeer(h labHost, private bool) *labPeer {
	t := s.t
	t.Helper()
	args := []string{"peer", "--lab-network", "--tracker", labTrackerURL, "--origin", labOriginURL, "--trust", s.content.pub,
		"--cache", filepath.Join(s.dir, "cache-"+filepath.Base(h.NS)), "--gateway", labGateway,
		"--listen", fmt.Sprintf("/ip4/0.0.0.0/tcp/%d,/ip4/0.0.0.0/udp/%d/quic-v1", labPort, labPort),
		"--relay", s.relay}
	if private {
		args = append(args, "--private")
	}
	p, err := startIn(h.NS, s.bin, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	s.procs = append(s.procs, p)
	lp := &labPeer{labHost: h, Private: private, proc: p}
	if err := waitHTTP(context.Background(), h.NS, "http://"+labGateway+"/api/status", p); err != nil {
		t.Fatal(err)
	}
	st, err := s.status(lp)
	if err != nil {
		t.Fatal(err)
	}
	lp.id = st.Peer
	return lp
}

func (s *labSwarm) status(p *labPeer) (labStatus, error) {
	var st labStatus
	resp, err := nsClient(p.NS).Get("http://" + labGateway + "/api/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// fetchAll has every peer join the content whole at once (a HEAD with
// ?prefetch=all: the swarm's background lane, rarest first, as shoal get
// does), waits until every one holds it all, then reads each copy through
// its gateway and checks it is the published bytes.
func (s *labSwarm) fetchAll(peers []*labPeer, timeout time.Duration) {
	t := s.t
	t.Helper()
	url := "http://" + labGateway + "/c/" + s.content.id + "/content.bin"
	for i, p := range peers {
		req, _ := http.NewRequest(http.MethodHead, url+"?prefetch=all", nil)
		resp, err := nsClient(p.NS).Do(req)
		if err != nil {
			t.Fatalf("peer %d: join: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("peer %d: join: HTTP %d", i, resp.StatusCode)
		}
	}
	deadline := time.Now().Add(timeout)
	for i, p := range peers {
		for {
			st, err := s.status(p)
			if err == nil && len(st.Swarms) > 0 && st.Swarms[0].Complete {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("peer %d (%s) did not complete within %v: %+v %v\n%s", i, p.Kind, timeout, st.Swarms, err, p.proc.log)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	for i, p := range peers {
		c := nsClient(p.NS)
		c.Timeout = time.Minute
		resp, err := c.Get(url + "?prefetch=none")
		if err != nil {
			t.Fatalf("peer %d: read: %v", i, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || n != s.size || [32]byte(h.Sum(nil)) != s.sum {
			t.Fatalf("peer %d (%s): read HTTP %d, %d bytes (%v) that differ from the %d published", i, p.Kind, resp.StatusCode, n, err, s.size)
		}
	}
}

// originServed is what the origin has served so far.
func (s *labSwarm) originServed() int64 {
	n, err := originServed(s.lab.pub, labOriginURL)
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}
