package tracker

import (
	"fmt"
	"net/netip"
	"testing"
)

// TestRedisChooseRules: the Redis store's choice among a sample, which
// stops drawing once it has its peers, keeps the rules: never the asker,
// never an entry past the TTL or without an address the asker can dial,
// the asker's region first, at most perPrefix from one /24, every eligible
// entry when there are fewer than asked, and a random choice (over many
// announces every eligible peer of the region is handed out, not only the
// first ones of the sample).
func TestRedisChooseRules(t *testing.T) {
	const cutoff = 1000
	entry := func(id, region, ip string, lastSeen int64, public bool) *sampled {
		e := redisEntry{lastSeen: lastSeen, region: region, addrs: peerAddrs{observed: netip.MustParseAddr(ip)}}
		if public {
			e.addrs.public = []string{"/ip4/" + ip + "/tcp/4001"}
		} else {
			e.addrs.private = []string{"/ip4/10.0.0.1/tcp/4001"}
		}
		return newSampled(id, e)
	}
	var entries []*sampled
	for i := range 20 { // eu: 20 peers over 10 /24s (2 each)
		entries = append(entries, entry(fmt.Sprintf("eu%02d", i), "eu", fmt.Sprintf("198.18.%d.%d", i/2, 10+i), 2000, true))
	}
	for i := range 10 { // us: each in its own /24
		entries = append(entries, entry(fmt.Sprintf("us%02d", i), "us", fmt.Sprintf("198.19.%d.1", i), 2000, true))
	}
	entries = append(entries,
		entry("me", "eu", "198.18.200.1", 2000, true),      // the asker itself
		entry("old", "eu", "198.18.201.1", 999, true),      // past the TTL
		entry("hidden", "eu", "198.18.202.1", 2000, false), // private address only, another network
	)
	a := &asker{id: "me", region: "eu", ip: netip.MustParseAddr("198.18.200.1")}
	rs := &redisStore{lim: limits{perPrefix: 1}}

	seen := map[string]int{}
	for range 200 {
		out := rs.choose(entries, a, 8, cutoff, nil)
		if len(out) != 8 {
			t.Fatalf("got %d peers, want 8", len(out))
		}
		nets := map[string]bool{}
		for _, p := range out {
			if p.Region != "eu" {
				t.Fatalf("asked 8 of 10 eu networks, got %s of region %q", p.Peer, p.Region)
			}
			switch p.Peer {
			case "me", "old", "hidden":
				t.Fatalf("handed out %s", p.Peer)
			}
			n := p.Peer[:2] + fmt.Sprint((int(p.Peer[2]-'0')*10+int(p.Peer[3]-'0'))/2)
			if nets[n] {
				t.Fatalf("two peers of one /24 (%s) with perPrefix 1: %v", n, peerIDs(out))
			}
			nets[n] = true
			seen[p.Peer]++
		}
	}
	for i := range 20 {
		if id := fmt.Sprintf("eu%02d", i); seen[id] == 0 {
			t.Errorf("%s never chosen in 200 announces: the choice is not random", id)
		}
	}

	// More asked than eligible: one per eu network (10), then every us peer.
	out := rs.choose(entries, a, 50, cutoff, nil)
	eu, us := 0, 0
	for _, p := range out {
		switch p.Region {
		case "eu":
			eu++
		case "us":
			us++
			if eu != 10 {
				t.Fatalf("a us peer before the 10 eu networks were taken: %v", peerIDs(out))
			}
		}
	}
	if eu != 10 || us != 10 {
		t.Fatalf("asked 50: %d eu and %d us peers, want 10 and 10 (%v)", eu, us, peerIDs(out))
	}
}
