package tracker

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
)

// TestPooledSampleReleasedClean: the memory store's sample comes in a
// pooled slice that the handler gives back once the answer is written;
// given back, it keeps no peer alive, and the next announce's sample
// is whole and its own.
func TestPooledSampleReleasedClean(t *testing.T) {
	s, clk := newTestServer(t, 5)
	ms := s.store.(*memStore)
	ip := netip.MustParseAddr("127.0.0.1")
	var last announceResult
	for i := range 30 {
		r := req("c", fmt.Sprintf("p%02d", i), "eu", 1)
		pa, _ := filterAddrs(r.Addrs, ip, nil)
		res, err := ms.announce(context.Background(), &r, admission{key: swarmKey{"", r.Content}, region: r.Region, addrs: pa, observed: ip}, 20, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if want := min(i, 20); len(res.peers) != want || res.pooled == nil {
			t.Fatalf("announce %d: %d peers (pooled %v), want %d in a pooled slice", i, len(res.peers), res.pooled != nil, want)
		}
		seen := map[string]bool{}
		for _, p := range res.peers {
			if p.Peer == r.Peer || seen[p.Peer] {
				t.Fatalf("announce %d: sample %v has the asker or a peer twice", i, res.peers)
			}
			seen[p.Peer] = true
		}
		if last.pooled != nil {
			full := (*last.pooled)[:cap(*last.pooled)]
			releasePeers(last.pooled)
			for j, p := range full {
				if p.Peer != "" || p.Addrs != nil || p.Encoded != nil {
					t.Fatalf("released sample keeps entry %d: %+v", j, p)
				}
			}
		}
		last = res
	}
	releasePeers(nil) // no sample (a stopped peer, another store): nothing to do
}
