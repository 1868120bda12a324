package tracker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
)

// BenchmarkAnnounce measures one re-announce through the HTTP handler (JSON
// decode, validation, state update, 50-peer sample, encode) in a swarm of
// 10,000 peers over 4 regions.
func BenchmarkAnnounce(b *testing.B) {
	s, _ := newTestServer(b, 1)
	const n = 10000
	bodies := make([][]byte, n)
	for i := range n {
		bodies[i], _ = json.Marshal(req("c", fmt.Sprintf("peer%05d", i), fmt.Sprintf("r%d", i%4), int64(i%2)))
		post(b, s, bodies[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if code, body := post(b, s, bodies[i%n]); code != http.StatusOK {
			b.Fatalf("HTTP %d: %s", code, body)
		}
	}
}

// BenchmarkSample isolates peer selection: cost must not grow with swarm size.
func BenchmarkSample(b *testing.B) {
	for _, n := range []int{100, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, clk := newTestServer(b, 1)
			var self *asker
			for i := range n {
				r := req("c", fmt.Sprintf("p%d", i), fmt.Sprintf("r%d", i%4), 1)
				ip := netip.MustParseAddr("127.0.0.1")
				pa, _ := filterAddrs(r.Addrs, ip)
				out, err := s.st.announce(&r, &admission{key: swarmKey{"", r.Content}, region: r.Region, addrs: pa, observed: ip}, clk.Now())
				if err != nil {
					b.Fatal(err)
				}
				self = &asker{id: out.e.id, region: out.e.region, ip: ip}
			}
			b.ReportAllocs()
			for b.Loop() {
				if got := s.st.sample(s.st.swarms[swarmKey{"", content("c")}], self, 50); len(got) != 50 {
					b.Fatalf("sampled %d", len(got))
				}
			}
		})
	}
}
