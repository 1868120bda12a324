//go:build e2e

package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/internal/redistest"
	"github.com/shoal-cdn/shoal/tracker"
)

// startReplica starts a `shoal tracker` on the Redis at redisURL (peers
// re-announce every second, so a silent one expires after 3 s) and returns
// its URL.
func (r *fxRig) startReplica(name, redisURL string) (string, *fxProc) {
	r.t.Helper()
	addr := freePort(r.t)
	p := r.start(name, "tracker", "--listen", addr, "--interval", "1s", "--admin-token", e2eAdminToken, "--redis", redisURL)
	r.up(name, "http://"+addr+"/metrics", p)
	return "http://" + addr, p
}

// listedPeers is how many peers the tracker at url lists in the swarm of id.
func listedPeers(t *testing.T, url, id string) int {
	var resp tracker.SwarmsResponse
	getAdminJSON(t, url+"/api/swarms", &resp)
	for _, s := range resp.Swarms {
		if s.Content.String() == id {
			return s.Peers
		}
	}
	return 0
}

// TestReplicaKilledMidSwarmLosesNothing: two tracker replicas share one
// Redis; twelve `shoal get` receivers, each told both tracker URLs (half in
// each order), fetch a 32 MiB file and seed on. One replica is killed
// (SIGKILL) when the swarm holds about 30 % of its chunks: every receiver
// writes the file byte for byte, the origin serves at most 1.3 copies, the
// receivers of the dead replica go on announcing through the other, and a
// newcomer that knows only the surviving replica fetches the whole file
// from the swarm with the origin stopped.
func TestReplicaKilledMidSwarmLosesNothing(t *testing.T) {
	const nPeers, size = 12, 32 << 20
	rds := redistest.Start(t)
	r := newFxRig(t)
	c := r.publish("replicas", fxFile{"big.bin", size, 1301})
	src := c.files["big.bin"]
	// The origin's uplink is capped (4 MiB/s, 8 s a copy), as a real one
	// is: on an uncapped loopback origin a loaded machine's peers learn of
	// each other's chunks late and fetch more from it (1.9 × F measured at
	// load average 24), whoever the tracker is.
	addr := freePort(t)
	r.originURL = "http://" + addr
	r.origin = r.start("origin", "origin", "--dir", r.layout, "--listen", addr, "--upload-limit", "4MiB/s")
	r.up("origin", r.originURL+"/metrics", r.origin)
	urlA, procA := r.startReplica("tracker-a", rds.URL())
	urlB, _ := r.startReplica("tracker-b", rds.URL())
	before := r.settle()

	caches, outs := make([]string, nPeers), make([]string, nPeers)
	for i := range nPeers {
		list := urlA + "," + urlB
		if i%2 == 1 {
			list = urlB + "," + urlA
		}
		caches[i] = filepath.Join(r.dir, fmt.Sprint("get-cache", i))
		outs[i] = filepath.Join(r.dir, fmt.Sprint("out", i))
		r.start(fmt.Sprint("get", i), "get", "--quiet", "--tracker", list, "--origin", r.originURL, "--trust", r.pub,
			"--cache", caches[i], "-o", outs[i], "--seed-for", "1h", c.id)
	}

	// Kill replica A once the swarm holds 30 % of its chunks.
	chunks := int((src.size + fxChunk - 1) / fxChunk)
	var atKill float64
	waitFor(t, "swarm 30 % done", fxDeadline, func() (bool, string) {
		have := 0
		for _, cache := range caches {
			have += countChunkFiles(t, cache)
		}
		atKill = float64(have) / float64(nPeers*chunks)
		return atKill >= 0.3, fmt.Sprintf("%d of %d chunks", have, nPeers*chunks)
	})
	procA.cmd.Process.Kill()
	<-procA.done
	killed := time.Now()
	t.Logf("tracker-a killed with the swarm %.0f %% done", 100*atKill)
	if atKill >= 1 {
		t.Fatalf("the swarm completed before the replica was killed: nothing tested")
	}

	waitFor(t, "every receiver's file written", 3*fxDeadline, func() (bool, string) {
		for i, out := range outs {
			if st, err := os.Stat(out); err != nil || st.Size() != src.size {
				return false, fmt.Sprintf("receiver %d: %v", i, err)
			}
		}
		return true, ""
	})
	for i, out := range outs {
		if sum, n := fileSum(t, out); sum != src.sum || n != src.size {
			t.Errorf("receiver %d wrote %d bytes (sha256 %x), want the source's %d (%x)", i, n, sum[:8], src.size, src.sum[:8])
		}
	}
	egress := r.settle().sub(before)
	t.Logf("FIGURE replicas: origin_bytes=%d (%.2f × F) for %d receivers of a %d-byte file", egress.bytes, float64(egress.bytes)/float64(size), nPeers, size)
	if limit := int64(size) * 13 / 10; egress.bytes > limit {
		t.Errorf("origin egress %d bytes, want at most 1.3 × F = %d", egress.bytes, limit)
	}

	// Every receiver is still listed a TTL (3 s) after the kill: those that
	// used replica A announce through B now.
	waitFor(t, "all receivers announcing through tracker-b", fxDeadline, func() (bool, string) {
		n := listedPeers(t, urlB, c.id)
		return time.Since(killed) > 4*time.Second && n == nPeers, fmt.Sprintf("%d of %d listed, %v after the kill", n, nPeers, time.Since(killed).Round(time.Millisecond))
	})

	// A newcomer that knows only replica B finds the swarm: with the origin
	// stopped, every byte comes from the peers B lists.
	r.origin.stop(t)
	newcomer := r.startPeer("newcomer", "--tracker", urlB)
	wantWhole(t, "newcomer GET, origin stopped", fxDo(t, http.MethodGet, newcomer.gw+"/c/"+c.id+"/big.bin"), src)
	ns, _ := newcomer.swarm(t, c.id)
	if ns.BytesFromPeers < src.size || ns.Peers == 0 {
		t.Errorf("newcomer: %d bytes from %d peers, want the whole %d from the swarm", ns.BytesFromPeers, ns.Peers, src.size)
	}
}
