package tracker

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/discovery"
)

// sampleRig is a state driven directly, without the handler: peers join
// from the addresses a test gives them.
type sampleRig struct {
	t   *testing.T
	st  *state
	now time.Time
	key swarmKey
}

func newSampleRig(t *testing.T, seed uint64) *sampleRig {
	lim := limits{swarmPeers: -1, tenantSwarms: -1, swarms: -1, peersTotal: -1, perPrefix: DefaultMaxPerPrefix}
	return &sampleRig{t: t, st: newState(time.Minute, rand.New(rand.NewPCG(seed, seed)), lim, 1000),
		now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), key: swarmKey{"", content("c")}}
}

// announce announces peer id of region from ip (its one address, port 4001).
func (r *sampleRig) announce(id, region, ip string, left int64) *peerEntry {
	r.t.Helper()
	req := discovery.AnnounceRequest{Content: r.key.content, Peer: id, Region: region, Left: left,
		Addrs: []string{"/ip4/" + ip + "/tcp/4001"}}
	obs := netip.MustParseAddr(ip)
	pa, _ := filterAddrs(req.Addrs, obs, nil)
	out, err := r.st.announce(&req, &admission{key: r.key, region: region, addrs: pa, observed: obs}, r.now)
	if err != nil {
		r.t.Fatal(err)
	}
	return out.e
}

// sample is a sample of k for e, checked for what every sample must be:
// no duplicates, never e, and each peer's kept encoding (if any) exactly
// what its fields encode to.
func (r *sampleRig) sample(e *peerEntry, k int) []discovery.PeerInfo {
	r.t.Helper()
	got := r.st.sample(r.st.swarms[r.key], &asker{self: e, id: e.id, region: e.region, ip: e.addrs.observed}, k, nil)
	seen := map[string]bool{}
	for _, p := range got {
		if p.Peer == e.id || seen[p.Peer] {
			r.t.Fatalf("sample for %s holds %s twice or the asker itself: %v", e.id, p.Peer, peerIDs(got))
		}
		seen[p.Peer] = true
		if p.Encoded != nil {
			plain := p
			plain.Encoded = nil
			if want := plain.AppendJSON(nil); !bytes.Equal(p.Encoded, want) {
				r.t.Fatalf("peer %s handed out as %s, its fields say %s", p.Peer, p.Encoded, want)
			}
		}
	}
	return got
}

// TestSmallSwarmHandedOutWholeInRandomOrder: a swarm no bigger than the
// sample is handed out whole, the asker's region first, and in an order
// that changes from announce to announce, so a flash crowd's newcomers do
// not all dial the same peer first.
func TestSmallSwarmHandedOutWholeInRandomOrder(t *testing.T) {
	r := newSampleRig(t, 1)
	var me *peerEntry
	for i := range 30 {
		region := []string{"eu", "us"}[i%2]
		e := r.announce(fmt.Sprintf("%s%02d", region, i), region, fmt.Sprintf("198.18.%d.1", i), 1)
		if i == 0 {
			me = e
		}
	}
	firsts := map[string]int{}
	var orders [][]string
	for range 60 {
		got := peerIDs(r.sample(me, 50))
		if len(got) != 29 {
			t.Fatalf("sampled %d of the 29 other peers: %v", len(got), got)
		}
		for i, id := range got {
			if wantEU := i < 14; strings.HasPrefix(id, "eu") != wantEU {
				t.Fatalf("order %v: want the 14 other eu peers first, then the 15 us peers", got)
			}
		}
		firsts[got[0]]++
		orders = append(orders, got)
	}
	if len(firsts) < 8 {
		t.Errorf("60 samples put only %d distinct peers first (%v): order not random", len(firsts), firsts)
	}
	if slices.Equal(orders[0][14:], orders[1][14:]) && slices.Equal(orders[1][14:], orders[2][14:]) {
		t.Errorf("the other region came in the same order three times: %v", orders[0][14:])
	}
}

// TestSmallSwarmStillCapsANetwork: in a swarm smaller than the sample, a
// network with more identities than the diversity cap still gets no more
// than the cap, and every other peer is handed out.
func TestSmallSwarmStillCapsANetwork(t *testing.T) {
	r := newSampleRig(t, 2)
	me := r.announce("me", "eu", "203.0.113.5", 1)
	for i := range 10 {
		r.announce(fmt.Sprintf("sybil%d", i), "eu", fmt.Sprintf("198.18.7.%d", 1+i), 1)
	}
	for i := range 5 {
		r.announce(fmt.Sprintf("honest%d", i), []string{"eu", "us"}[i%2], fmt.Sprintf("198.19.%d.1", i), 1)
	}
	if c := r.st.swarms[r.key].crowded; c != 1 {
		t.Fatalf("crowded networks %d, want 1 (the /24 of 10)", c)
	}
	for round := range 20 {
		sybils, honest := 0, 0
		for _, p := range r.sample(me, 50) {
			if strings.HasPrefix(p.Peer, "sybil") {
				sybils++
			} else {
				honest++
			}
		}
		if sybils > DefaultMaxPerPrefix || honest != 5 {
			t.Fatalf("round %d: %d peers of the crowded /24 (at most %d) and %d of 5 others", round, sybils, DefaultMaxPerPrefix, honest)
		}
	}
}

// TestSwarmIndexesFollowChurn: after any sequence of joins, moves between
// networks and regions, and leaves, the swarm's flat list, regions and
// count of crowded networks say what its peers say.
func TestSwarmIndexesFollowChurn(t *testing.T) {
	r := newSampleRig(t, 3)
	rng := rand.New(rand.NewPCG(3, 3))
	for step := range 3000 {
		id := fmt.Sprintf("p%d", rng.IntN(60))
		var e *peerEntry
		if sw := r.st.swarms[r.key]; sw != nil {
			e = sw.peers[id]
		}
		if e != nil && rng.IntN(4) == 0 {
			r.st.remove(e)
		} else {
			// Few networks, so some go over the cap and come back under.
			r.announce(id, []string{"eu", "us", "ap"}[rng.IntN(3)], fmt.Sprintf("198.18.%d.%d", rng.IntN(8), 1+rng.IntN(200)), int64(rng.IntN(2)))
		}
		sw := r.st.swarms[r.key]
		if sw == nil {
			continue
		}
		if len(sw.list) != len(sw.peers) {
			t.Fatalf("step %d: list of %d, map of %d", step, len(sw.list), len(sw.peers))
		}
		crowded, regions := 0, map[string]int{}
		for i, e := range sw.list {
			if e.pos != i || sw.peers[e.id] != e {
				t.Fatalf("step %d: %s at %d says %d", step, e.id, i, e.pos)
			}
			if e.reg == nil || e.reg != sw.regions[e.region] {
				t.Fatalf("step %d: %s of region %q points to another region", step, e.id, e.region)
			}
			regions[e.region]++
		}
		if len(sw.netSolo) != len(sw.nets) {
			t.Fatalf("step %d: %d solo slots for %d networks", step, len(sw.netSolo), len(sw.nets))
		}
		for i, n := range sw.nets {
			if len(n.peers) > DefaultMaxPerPrefix {
				crowded++
			}
			if want := (*peerEntry)(nil); len(n.peers) == 1 && sw.netSolo[i] != n.peers[0] || len(n.peers) != 1 && sw.netSolo[i] != want {
				t.Fatalf("step %d: network %d of %d peers, solo slot %v", step, i, len(n.peers), sw.netSolo[i])
			}
			for _, e := range n.peers {
				if e.netShared != (len(n.peers) > 1) {
					t.Fatalf("step %d: %s says its network is shared: %v, the network has %d peers", step, e.id, e.netShared, len(n.peers))
				}
			}
		}
		for _, reg := range sw.regions {
			if len(reg.slots) != len(reg.groups) {
				t.Fatalf("step %d: region %s: %d slots for %d groups", step, reg.name, len(reg.slots), len(reg.groups))
			}
			for i, g := range reg.groups {
				sl := reg.slots[i]
				if want := (*peerEntry)(nil); len(g.peers) == 1 && sl.solo != g.peers[0] || len(g.peers) != 1 && sl.solo != want {
					t.Fatalf("step %d: region %s group %d of %d peers, solo slot %v", step, reg.name, i, len(g.peers), sl.solo)
				}
				// The slot is the group's own slice, not a stale copy.
				if len(sl.peers) != len(g.peers) || len(g.peers) > 0 && &sl.peers[0] != &g.peers[0] || sl.net != g.net || sl.capped != g.capped {
					t.Fatalf("step %d: region %s group %d: slot of %d peers (net %p, capped %v), group of %d (net %p, capped %v)",
						step, reg.name, i, len(sl.peers), sl.net, sl.capped, len(g.peers), g.net, g.capped)
				}
				if g.idx != i || g.net != sw.byNet[g.key.prefix] || g.key.region != reg.name {
					t.Fatalf("step %d: region %s group %d says index %d, network %v", step, reg.name, i, g.idx, g.key)
				}
				for j, e := range g.peers {
					if e.g[groupLocal] != g || e.gIdx[groupLocal] != j || e.region != reg.name || e.prefix != g.key.prefix {
						t.Fatalf("step %d: %s listed in group %v at %d says group %v at %d", step, e.id, g.key, j, e.g[groupLocal].key, e.gIdx[groupLocal])
					}
				}
			}
		}
		if crowded != sw.crowded || len(regions) != len(sw.regions) {
			t.Fatalf("step %d: %d crowded networks counted %d; regions %v, indexed %d", step, crowded, sw.crowded, regions, len(sw.regions))
		}
		if step%50 == 0 {
			for _, e := range sw.list {
				r.sample(e, 8)
				break
			}
		}
	}
}

// TestKeptEncodingFollowsChanges: the encoding a peer is handed out with
// changes when what it encodes does (seed, addresses, region), and only
// then.
func TestKeptEncodingFollowsChanges(t *testing.T) {
	r := newSampleRig(t, 4)
	me := r.announce("me", "eu", "198.18.0.1", 1)
	find := func() discovery.PeerInfo {
		for _, p := range r.sample(me, 50) {
			if p.Peer == "other" {
				return p
			}
		}
		t.Fatal("other peer not in the sample")
		return discovery.PeerInfo{}
	}
	r.announce("other", "eu", "198.18.1.1", 1)
	first := find().Encoded
	r.announce("other", "eu", "198.18.1.1", 5) // still leeching: the same bytes
	if again := find().Encoded; &again[0] != &first[0] {
		t.Error("an announce that changed nothing handed out remade the encoding")
	}
	for _, c := range []struct{ region, ip, want string }{
		{"eu", "198.18.1.1", `"seed":true`},
		{"eu", "198.18.2.1", `198.18.2.1`},
		{"us", "198.18.2.1", `"region":"us"`},
	} {
		r.announce("other", c.region, c.ip, 0)
		if got := find().Encoded; !bytes.Contains(got, []byte(c.want)) {
			t.Errorf("after announcing %s from %s: handed out as %s, want %s in it", c.region, c.ip, got, c.want)
		}
	}
}

// TestCapCountsLoneRegionalPeer: a network with one peer in the asker's
// region and many in others gives at most the cap in all, the one taken
// for the asker's region included.
func TestCapCountsLoneRegionalPeer(t *testing.T) {
	r := newSampleRig(t, 5)
	me := r.announce("me", "eu", "203.0.113.5", 1)
	r.announce("lone", "eu", "198.18.7.1", 1)
	for i := range 10 {
		r.announce(fmt.Sprintf("crowd%d", i), "us", fmt.Sprintf("198.18.7.%d", 2+i), 1)
	}
	for i := range 3 {
		r.announce(fmt.Sprintf("other%d", i), "us", fmt.Sprintf("198.19.%d.1", i), 1)
	}
	lone := 0
	for round := range 50 {
		got := r.sample(me, 8)
		fromNet := 0
		for _, p := range got {
			if p.Peer == "lone" || strings.HasPrefix(p.Peer, "crowd") {
				fromNet++
			}
		}
		if fromNet > DefaultMaxPerPrefix {
			t.Fatalf("round %d: %d peers of 198.18.7.0/24 in %v, want at most %d", round, fromNet, peerIDs(got), DefaultMaxPerPrefix)
		}
		if len(got) > 0 && got[0].Peer == "lone" {
			lone++
		}
	}
	if lone != 50 {
		t.Errorf("the one other peer of the asker's region came first in %d of 50 samples, want all", lone)
	}
}
