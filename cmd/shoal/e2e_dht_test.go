//go:build e2e

package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/agent"
)

// TestDHTSwarmFormsWithTrackerDown: no tracker runs at all. A `shoal relay`
// is the bootstrap node; one seed (fetched
// from the origin) and seven getters know only its address. Four getters
// are given no tracker, three a tracker URL whose port is closed. They find
// each other through the DHT (and exchange peers), complete with origin
// egress at most 1.3 × the content's size, and every copy is identical.
func TestDHTSwarmFormsWithTrackerDown(t *testing.T) {
	const size = 32 << 20
	r := newFxRig(t)
	c := r.publish("dht", fxFile{"a.bin", size, 1212})
	r.startOrigin()
	if r.trackerURL != "" {
		t.Fatal("the rig started a tracker")
	}
	closedTracker := "http://" + freePort(t) // nothing listens there

	// The bootstrap node is a real shoal relay (a DHT server holding no
	// content), the node peers are given in a deployment.
	bootAddr, _ := startRelayBin(t, r.bin, filepath.Join(r.dir, "relay"), freePort(t))

	dhtUp := func(p *fxPeer) {
		t.Helper()
		waitFor(t, p.name+" knows a DHT server", fxDeadline, func() (bool, string) {
			d := p.status(t).Discovery.DHT
			return d != nil && d.RoutingTable > 0, fmt.Sprintf("%+v", d)
		})
	}

	seed := r.startPeer("seed", "--bootstrap", bootAddr)
	dhtUp(seed)
	wantWhole(t, "seed GET", fxDo(t, http.MethodGet, seed.gw+"/c/"+c.id+"/a.bin"), c.files["a.bin"])
	seed.waitComplete(t, c.id)
	waitFor(t, "the seed provides the content", fxDeadline, func() (bool, string) {
		d := seed.status(t).Discovery.DHT
		return d != nil && d.Provided > 0, fmt.Sprintf("%+v", d)
	})

	var getters []*fxPeer
	for i := range 7 {
		args := []string{"--bootstrap", bootAddr, "--prefetch", "all"}
		if i%2 == 1 {
			args = append(args, "--tracker", closedTracker)
		}
		g := r.startPeer(fmt.Sprintf("getter-%d", i), args...)
		dhtUp(g)
		getters = append(getters, g)
	}
	// HEAD joins the swarm without reading; --prefetch all then fetches the
	// whole content in the background, all seven at once.
	for _, g := range getters {
		if res := fxDo(t, http.MethodHead, g.gw+"/c/"+c.id+"/a.bin"); res.status != http.StatusOK {
			t.Fatalf("%s HEAD: %d", g.name, res.status)
		}
	}
	for _, g := range getters {
		g.waitComplete(t, c.id)
	}
	for _, g := range getters {
		wantWhole(t, g.name+" GET", fxDo(t, http.MethodGet, g.gw+"/c/"+c.id+"/a.bin"), c.files["a.bin"])
	}
	o := r.settle()
	var lines []string
	for _, g := range append([]*fxPeer{seed}, getters...) {
		st := g.status(t)
		s, _ := g.swarm(t, c.id)
		src := st.Discovery.Sources
		lines = append(lines, fmt.Sprintf("%s: peers %d, from peers %d B, from origin %d B; found via dht %d/%d, pex %d/%d, tracker %d/%d (named/connected)",
			g.name, s.Peers, s.BytesFromPeers, s.BytesFromOrigin,
			src[agent.SourceDHT].Learned, src[agent.SourceDHT].Connected,
			src[agent.SourcePEX].Learned, src[agent.SourcePEX].Connected,
			src[agent.SourceTracker].Learned, src[agent.SourceTracker].Connected))
		if g != seed && src[agent.SourceDHT].Connected == 0 {
			t.Errorf("%s connected to no peer found through the DHT", g.name)
		}
		if src[agent.SourceTracker].Learned != 0 {
			t.Errorf("%s learned %d peers from a tracker that does not run", g.name, src[agent.SourceTracker].Learned)
		}
	}
	t.Logf("DHT swarm, tracker down, 1 seed + 7 getters, F = %d B: origin served %d B in %d requests (%.3f F)\n%s",
		size, o.bytes, o.requests, float64(o.bytes)/size, strings.Join(lines, "\n"))
	if limit := int64(size) * 13 / 10; o.bytes > limit {
		t.Fatalf("origin egress %d B > 1.3 F = %d B", o.bytes, limit)
	}
}
