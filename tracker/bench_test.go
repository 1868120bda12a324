package tracker

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/internal/redistest"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/token"
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
	for _, c := range []struct {
		n      int
		spread bool // peers over many /24s; else all on loopback
	}{{100, false}, {10000, false}, {100000, false}, {100, true}, {1000, true}, {10000, true}} {
		n, spread := c.n, c.spread
		name := fmt.Sprint(n)
		if spread {
			name += "-spread"
		}
		b.Run(name, func(b *testing.B) {
			s, clk := newTestServer(b, 1)
			memState(s).lim.swarmPeers, memState(s).lim.peersTotal = -1, -1 // a swarm of n, past the default caps
			var self *asker
			for i := range n {
				r := req("c", fmt.Sprintf("p%d", i), fmt.Sprintf("r%d", i%4), 1)
				ip := netip.MustParseAddr("127.0.0.1")
				if spread {
					// As `shoal bench tracker` spreads them: each peer its
					// own address, a few per /24.
					ip = netip.AddrFrom4([4]byte{198, byte(18 + i%2), byte(i / 2 % 256), byte(1 + i/512%250)})
					r.Addrs = []string{"/ip4/" + ip.String() + "/tcp/4001"}
				}
				pa, _ := filterAddrs(r.Addrs, ip, nil)
				out, err := memState(s).announce(&r, &admission{key: swarmKey{"", r.Content}, region: r.Region, addrs: pa, observed: ip}, clk.Now())
				if err != nil {
					b.Fatal(err)
				}
				self = &asker{id: out.e.id, region: out.e.region, ip: ip}
			}
			b.ReportAllocs()
			for b.Loop() {
				if got := memState(s).sample(memState(s).swarms[swarmKey{"", content("c")}], self, 50, nil); len(got) != 50 {
					b.Fatalf("sampled %d", len(got))
				}
			}
		})
	}
}

// BenchmarkAnnounceChecks measures re-announces through the HTTP handler in
// a swarm of 10,000 peers (4 regions, distinct addresses) with the trust
// checks off (unsigned, no token, no rate limits) and on (Ed25519 announce
// signature, the binary's token check with its cache of verified tokens,
// rate limits, replay check), in one run so the two are comparable; and
// "on-uncached", the same without the token cache; "on-ticket", "on" where
// each peer, after its first signed announce, MACs its announces with the
// session ticket it got (session.go). Signing and MACing are the peer's
// cost and are kept out of the timing.
func BenchmarkAnnounceChecks(b *testing.B) {
	const n = 10000
	issuer := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tokenFor := func(c core.ContentID, peer string) string {
		tok, err := token.Issue(issuer, token.Claims{Tenant: "t", Scope: token.ContentScope(c), Peer: peer, NotBefore: t0, Expiry: t0.Add(time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		return tok
	}
	for _, mode := range []string{"off", "on", "on-uncached", "on-ticket"} {
		on := mode != "off"
		b.Run(mode, func(b *testing.B) {
			clk := &core.ManualClock{T: t0}
			cfg := Config{Interval: 10 * time.Second, MaxPeers: 50, Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)), Logger: quiet}
			if on {
				v := token.NewVerifier([]manifest.PublicKey{manifest.PublicOf(issuer)}, clk)
				if mode != "on-uncached" {
					v = v.WithCache(DefaultTokenCache)
				}
				if mode == "on-ticket" {
					cfg.SessionTTL = DefaultSessionTTL
				}
				cfg.Authorize, cfg.RatePerIP, cfg.RatePerPrefix = TokenAuthorizer(v), 1e9, 1e9
			} else {
				cfg.AllowUnsigned, cfg.RatePerIP, cfg.RatePerPrefix = true, -1, -1
			}
			s := New(cfg)
			peers := make([]testPeer, n)
			remotes := make([]string, n)
			reqs := make([]discovery.AnnounceRequest, n)
			tickets := make([]*discovery.Session, n)
			body := func(i int, at time.Time) []byte {
				r := reqs[i]
				switch {
				case tickets[i] != nil:
					r.MACWith(*tickets[i], at)
				case on:
					r = peers[i].signed(b, r, at)
				}
				bb, _ := json.Marshal(r)
				return bb
			}
			for i := range n {
				peers[i] = newPeer(b, uint64(i+1))
				ip := fmt.Sprintf("198.18.%d.%d", i/250, 1+i%250)
				remotes[i] = ip + ":4000"
				reqs[i] = discovery.AnnounceRequest{Content: content("c"), Peer: peers[i].id, Left: int64(i % 2),
					Region: fmt.Sprintf("r%d", i%4), Addrs: []string{"/ip4/" + ip + "/tcp/4001"}}
				if on {
					reqs[i].Token = tokenFor(reqs[i].Content, peers[i].id)
				}
				code, resp := postFrom(b, s, remotes[i], body(i, clk.Now()))
				if code != http.StatusOK {
					b.Fatalf("HTTP %d: %s", code, resp)
				}
				if mode == "on-ticket" {
					var ar discovery.AnnounceResponse
					if err := json.Unmarshal(resp, &ar); err != nil || ar.Session == nil {
						b.Fatalf("no session ticket in %s (%v)", resp, err)
					}
					tickets[i] = ar.Session
				}
			}
			// Every announce made (signed or MACed: the peers' cost) before
			// the timer starts, each a millisecond after the previous one,
			// when the clock will show it: not a replay, never stale.
			start := clk.Now()
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = body(i%n, start.Add(time.Duration(i+1)*time.Millisecond))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				clk.Advance(time.Millisecond)
				if code, resp := postFrom(b, s, remotes[i%n], bodies[i]); code != http.StatusOK {
					b.Fatalf("HTTP %d: %s", code, resp)
				}
				bodies[i] = nil
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "announces/s")
		})
	}
}

// BenchmarkAnnounceRedis is BenchmarkAnnounce on the Redis store (a real
// redis-server on loopback), with the handler called from as many
// goroutines as GOMAXPROCS: one EVALSHA per announce, so the figure is
// the round trips one tracker process gets through.
func BenchmarkAnnounceRedis(b *testing.B) {
	rds := redistest.Start(b)
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := Open(context.Background(), Config{Interval: 10 * time.Second, MaxPeers: 50, Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)),
		Logger: quiet, AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1, Redis: rds.URL()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 10000
	bodies := make([][]byte, n)
	for i := range n {
		bodies[i], _ = json.Marshal(req("c", fmt.Sprintf("peer%05d", i), fmt.Sprintf("r%d", i%4), int64(i%2)))
		post(b, s, bodies[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if code, body := post(b, s, bodies[next.Add(1)%n]); code != http.StatusOK {
				b.Errorf("HTTP %d: %s", code, body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "announces/s")
}

// BenchmarkAnnounceFastPath is BenchmarkAnnounce through the handler Serve
// runs as the server runs it: one handler, one request context reused
// request after request (its response reset in between), so allocs/op
// and B/op are the announce's own, not the harness's. Peers are spread
// over 512 /24s and 4 regions as `shoal bench tracker` spreads them; a
// swarm of 40 is handed out whole, one of 2,000 (the bench's largest) has
// about 4 peers per /24, one of 10,000 about 20.
func BenchmarkAnnounceFastPath(b *testing.B) {
	for _, n := range []int{40, 2000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			s := New(Config{Interval: 10 * time.Second, MaxPeers: 50, Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)), Logger: quiet,
				AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1})
			h := s.fastHandler()
			bodies := make([][]byte, n)
			addrs := make([]*net.TCPAddr, n)
			for i := range n {
				ip := netip.AddrFrom4([4]byte{198, byte(18 + i%2), byte(i / 2 % 256), byte(1 + i/512%250)})
				r := req("c", fmt.Sprintf("12D3KooW%044d", i), fmt.Sprintf("r%d", i%4), int64(i%2))
				r.Addrs = []string{"/ip4/" + ip.String() + "/tcp/4001", "/ip4/" + ip.String() + "/udp/4001/quic-v1"}
				bodies[i], _ = json.Marshal(r)
				addrs[i] = &net.TCPAddr{IP: ip.AsSlice(), Port: 4001}
			}
			var rq fasthttp.Request
			var c fasthttp.RequestCtx
			send := func(i int) {
				rq.Reset()
				rq.Header.SetMethod(http.MethodPost)
				rq.SetRequestURI(discovery.AnnouncePath)
				rq.SetBody(bodies[i])
				c.Response.Reset()
				c.Init(&rq, addrs[i], nil)
				h(&c)
				if c.Response.StatusCode() != http.StatusOK {
					b.Fatalf("HTTP %d: %s", c.Response.StatusCode(), c.Response.Body())
				}
			}
			for i := range n {
				send(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				send(i % n)
			}
		})
	}
}
