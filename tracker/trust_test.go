package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

// auditLog collects the audit events of a tracker under test.
type auditLog struct {
	mu sync.Mutex // guards ev
	ev []audit.Event
}

func (l *auditLog) Record(e audit.Event) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }

// of returns the events of kind.
func (l *auditLog) of(kind string) []audit.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []audit.Event
	for _, e := range l.ev {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// newStrictServer returns a tracker with the defaults of a real one
// (signatures required, rate limits on) on a manual clock; mod adjusts its
// config.
func newStrictServer(t testing.TB, mod func(*Config)) (*Server, *core.ManualClock, *auditLog) {
	t.Helper()
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log := &auditLog{}
	cfg := Config{Interval: 10 * time.Second, Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)), Logger: quiet, Audit: log}
	if mod != nil {
		mod(&cfg)
	}
	return New(cfg), clk, log
}

// send posts r from remote and decodes the answer; the status is returned
// with the decoded body (peers) or the error text.
func send(t testing.TB, s *Server, remote string, r discovery.AnnounceRequest) (int, discovery.AnnounceResponse, string) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	code, body := postFrom(t, s, remote, b)
	var resp discovery.AnnounceResponse
	if code == http.StatusOK {
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatalf("announce %s: %v: %s", r.Peer, err, body)
		}
		return code, resp, ""
	}
	var e errorBody
	_ = json.Unmarshal(body, &e)
	return code, resp, e.Error
}

// mustSend is send that requires 200.
func mustSend(t testing.TB, s *Server, remote string, r discovery.AnnounceRequest) discovery.AnnounceResponse {
	t.Helper()
	code, resp, msg := send(t, s, remote, r)
	if code != http.StatusOK {
		t.Fatalf("announce of %s from %s: HTTP %d: %s", r.Peer, remote, code, msg)
	}
	return resp
}

// at is an announce of content c from a peer listening on ip:port.
func at(c, ip string, port int) discovery.AnnounceRequest {
	return discovery.AnnounceRequest{Content: content(c), Left: 1, Addrs: []string{fmt.Sprintf("/ip4/%s/tcp/%d", ip, port)}}
}

func find(ps []discovery.PeerInfo, id string) (discovery.PeerInfo, bool) {
	i := slices.IndexFunc(ps, func(p discovery.PeerInfo) bool { return p.Peer == id })
	if i < 0 {
		return discovery.PeerInfo{}, false
	}
	return ps[i], true
}

func TestUnsignedAnnounceRefusedByDefault(t *testing.T) {
	s, _, log := newStrictServer(t, nil)
	r := at("c", "198.18.0.1", 4001)
	r.Peer = newPeer(t, 1).id
	code, _, msg := send(t, s, "198.18.0.1:5000", r)
	if code != http.StatusForbidden || !strings.Contains(msg, "not signed") {
		t.Fatalf("unsigned announce: HTTP %d %q, want 403 saying it is not signed", code, msg)
	}
	if ev := log.of(audit.KindAnnounceRejected); len(ev) != 1 || ev[0].Peer != r.Peer || ev[0].IP != "198.18.0.1" {
		t.Fatalf("audit %+v, want one announce.rejected naming the peer and its address", ev)
	}
	if sw := s.Swarms(); len(sw) != 0 {
		t.Fatalf("unsigned announce listed: %+v", sw)
	}
}

// TestForgedAnnounceKeepsRealPeer is the attack measured on main: an
// announce in another peer's name, with attacker-chosen addresses and then
// event=stopped, must change nothing of the real peer's entry.
func TestForgedAnnounceKeepsRealPeer(t *testing.T) {
	s, clk, log := newStrictServer(t, nil)
	victim, mallory, watcher := newPeer(t, 1), newPeer(t, 2), newPeer(t, 3)
	mustSend(t, s, "198.18.0.1:5000", victim.signed(t, at("c", "198.18.0.1", 4001), clk.Now()))

	for _, ev := range []discovery.Event{discovery.EventStarted, discovery.EventStopped} {
		forged := at("c", "198.18.9.9", 22) // where the attacker wants peers to dial
		forged.Event = ev
		forged = mallory.signed(t, forged, clk.Now())
		forged.Peer = victim.id // speak for the victim with mallory's signature
		if code, _, msg := send(t, s, "198.18.9.9:5000", forged); code != http.StatusForbidden || !strings.Contains(msg, "signature") {
			t.Fatalf("forged %q announce: HTTP %d %q, want 403 naming the signature", ev, code, msg)
		}
	}
	resp := mustSend(t, s, "198.18.0.3:5000", watcher.signed(t, at("c", "198.18.0.3", 4001), clk.Now()))
	p, ok := find(resp.Peers, victim.id)
	if !ok || !slices.Equal(p.Addrs, []string{"/ip4/198.18.0.1/tcp/4001"}) {
		t.Fatalf("after forged announces, the watcher sees %+v, want the victim at its own address", resp.Peers)
	}
	if ev := log.of(audit.KindAnnounceRejected); len(ev) != 2 || ev[0].Peer != victim.id || !strings.Contains(ev[0].Reason, "signature") {
		t.Fatalf("audit %+v, want two announce.rejected with the reason", ev)
	}
	if got := metricLabel(t, s, `shoal_tracker_announces_total{result="forged"}`); got != 2 {
		t.Errorf("forged announces counted %v, want 2", got)
	}
}

func TestStaleAndReplayedAnnouncesRefused(t *testing.T) {
	s, clk, _ := newStrictServer(t, nil)
	p, w := newPeer(t, 1), newPeer(t, 2)
	const ip = "198.18.0.1:5000"

	old := p.signed(t, at("c", "198.18.0.1", 4001), clk.Now().Add(-DefaultClockSkew-time.Second))
	if code, _, msg := send(t, s, ip, old); code != http.StatusForbidden || !strings.Contains(msg, "timestamp") {
		t.Fatalf("stale announce: HTTP %d %q, want 403 about the timestamp", code, msg)
	}
	first := p.signed(t, at("c", "198.18.0.1", 4001), clk.Now())
	mustSend(t, s, ip, first)
	if code, _, msg := send(t, s, ip, first); code != http.StatusForbidden || !strings.Contains(msg, "replayed") {
		t.Fatalf("replayed announce: HTTP %d %q, want 403 replay", code, msg)
	}
	stop := at("c", "198.18.0.1", 4001)
	stop.Event = discovery.EventStopped
	mustSend(t, s, ip, p.signed(t, stop, clk.Now().Add(time.Millisecond)))
	// Within the skew window, the announce from before the stop must not
	// list the peer again.
	clk.Advance(time.Second)
	if code, _, _ := send(t, s, ip, first); code != http.StatusForbidden {
		t.Fatalf("replay after stopped: HTTP %d, want 403", code)
	}
	if resp := mustSend(t, s, "198.18.0.2:5000", w.signed(t, at("c", "198.18.0.2", 4001), clk.Now())); len(resp.Peers) != 0 {
		t.Fatalf("stopped peer listed again: %+v", resp.Peers)
	}
}

func TestAddressFilter(t *testing.T) {
	cases := []struct {
		name, observed, addr string
		kept                 bool
		visibleTo            []string // askers that get it (when kept)
		hiddenFrom           []string
	}{
		{"own public", "198.18.0.1", "/ip4/198.18.0.1/tcp/1", true, []string{"198.19.0.1", "127.0.0.1", "10.0.0.9"}, nil},
		{"own public quic", "198.18.0.1", "/ip4/198.18.0.1/udp/1/quic-v1", true, []string{"198.19.0.1"}, nil},
		{"foreign public", "198.18.0.1", "/ip4/198.18.9.9/tcp/1", false, nil, nil},
		{"foreign v6", "198.18.0.1", "/ip6/2001:db8::1/tcp/1", false, nil, nil},
		{"own v6", "2001:db8::1", "/ip6/2001:db8::1/tcp/1", true, []string{"198.19.0.1"}, nil},
		{"loopback from remote", "198.18.0.1", "/ip4/127.0.0.1/tcp/1", false, nil, nil},
		{"loopback on loopback", "127.0.0.1", "/ip4/127.0.0.1/tcp/1", true, []string{"127.0.0.1"}, []string{"198.19.0.1", "10.0.0.9"}},
		{"link-local", "10.0.0.1", "/ip4/169.254.1.1/tcp/1", false, nil, nil},
		{"link-local v6", "10.0.0.1", "/ip6/fe80::1/tcp/1", false, nil, nil},
		{"zoned v6", "10.0.0.1", "/ip6zone/eth0/ip6/fe80::1/tcp/1", false, nil, nil},
		{"unspecified", "10.0.0.1", "/ip4/0.0.0.0/tcp/1", false, nil, nil},
		{"multicast", "10.0.0.1", "/ip4/224.0.0.1/udp/1", false, nil, nil},
		{"host name", "198.18.0.1", "/dns4/example.com/tcp/1", false, nil, nil},
		{"relay circuit", "198.18.0.1", "/ip4/198.18.0.1/tcp/1/p2p/12D3KooWGRUVh6ckNHTDcrXvNFg5qZBZzKpLrE8aDsoaUGt2UGJQ/p2p-circuit", true, []string{"198.19.0.1"}, nil},
		{"circuit through another public relay", "198.18.0.1", "/ip4/198.18.7.7/udp/1/quic-v1/p2p/12D3KooWGRUVh6ckNHTDcrXvNFg5qZBZzKpLrE8aDsoaUGt2UGJQ/p2p-circuit", true, []string{"198.19.0.1", "127.0.0.1"}, nil},
		{"circuit through an unnamed relay", "198.18.0.1", "/ip4/198.18.7.7/tcp/1/p2p-circuit", false, nil, nil},
		{"circuit through a host name", "198.18.0.1", "/dns4/relay.example.com/tcp/1/p2p/12D3KooWGRUVh6ckNHTDcrXvNFg5qZBZzKpLrE8aDsoaUGt2UGJQ/p2p-circuit", false, nil, nil},
		{"circuit through loopback from remote", "198.18.0.1", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGRUVh6ckNHTDcrXvNFg5qZBZzKpLrE8aDsoaUGt2UGJQ/p2p-circuit", false, nil, nil},
		{"circuit through loopback on loopback", "127.0.0.1", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGRUVh6ckNHTDcrXvNFg5qZBZzKpLrE8aDsoaUGt2UGJQ/p2p-circuit", true, []string{"127.0.0.1"}, []string{"198.19.0.1"}},
		{"circuit through a LAN relay", "10.0.0.1", "/ip4/10.0.0.2/tcp/1/p2p/12D3KooWGRUVh6ckNHTDcrXvNFg5qZBZzKpLrE8aDsoaUGt2UGJQ/p2p-circuit", true, []string{"10.0.0.9"}, []string{"198.19.0.1"}},
		{"circuit through an unlisted public relay", "198.18.0.1", "/ip4/198.18.9.9/tcp/1/p2p/12D3KooWGRUVh6ckNHTDcrXvNFg5qZBZzKpLrE8aDsoaUGt2UGJQ/p2p-circuit", false, nil, nil},
		{"circuit naming a listed relay's ID at another address", "198.18.0.1", "/ip4/203.0.113.9/tcp/22/p2p/12D3KooWGRUVh6ckNHTDcrXvNFg5qZBZzKpLrE8aDsoaUGt2UGJQ/p2p-circuit", false, nil, nil},
		{"circuit through multicast", "198.18.0.1", "/ip4/224.0.0.1/udp/1/quic-v1/p2p/12D3KooWGRUVh6ckNHTDcrXvNFg5qZBZzKpLrE8aDsoaUGt2UGJQ/p2p-circuit", false, nil, nil},
		{"private in a LAN", "10.0.0.1", "/ip4/10.0.0.1/tcp/1", true, []string{"10.0.0.9", "192.168.1.1", "127.0.0.1"}, []string{"198.19.0.1"}},
		{"another host in the LAN", "10.0.0.1", "/ip4/10.0.0.7/tcp/22", false, nil, nil},
		{"private from loopback", "127.0.0.1", "/ip4/10.0.0.7/tcp/1", false, nil, nil},
		{"private behind a NAT", "198.18.0.1", "/ip4/192.168.1.5/tcp/1", true, []string{"198.18.0.1"}, []string{"198.18.0.2", "198.19.0.1"}},
		{"carrier NAT", "198.18.0.1", "/ip4/100.64.0.5/tcp/1", true, []string{"198.18.0.1"}, []string{"198.19.0.1"}},
	}
	const relayID = "12D3KooWGRUVh6ckNHTDcrXvNFg5qZBZzKpLrE8aDsoaUGt2UGJQ"
	listed, err := ParseRelays([]string{"/ip4/198.18.0.1/tcp/4002/p2p/" + relayID, "/ip4/198.18.7.7/udp/4002/quic-v1/p2p/" + relayID,
		"/ip4/10.0.0.2/tcp/4002/p2p/" + relayID, "/ip4/224.0.0.1/tcp/1/p2p/" + relayID})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs := mustAddr(t, c.observed)
			pa, dropped := filterAddrs([]string{c.addr}, obs, listed)
			if kept := len(dropped) == 0; kept != c.kept {
				t.Fatalf("kept = %v (dropped %+v), want %v", kept, dropped, c.kept)
			}
			for _, a := range c.visibleTo {
				if got := pa.visible(mustAddr(t, a), nil); !slices.Equal(got, []string{c.addr}) {
					t.Errorf("asker %s gets %v, want the address", a, got)
				}
			}
			for _, a := range c.hiddenFrom {
				if got := pa.visible(mustAddr(t, a), nil); len(got) != 0 || pa.anyVisible(mustAddr(t, a)) {
					t.Errorf("asker %s gets %v, want nothing", a, got)
				}
			}
		})
	}
}

// TestForeignAddressNeverHandedOut is the reflection attack end to end: an
// announce listing a third party's address, signed by its own key, joins,
// but nobody is told to dial that address; the audit log says so.
func TestForeignAddressNeverHandedOut(t *testing.T) {
	s, clk, log := newStrictServer(t, nil)
	m, w := newPeer(t, 1), newPeer(t, 2)
	r := at("c", "198.18.9.9", 22)
	r.Addrs = append(r.Addrs, "/ip4/198.18.0.1/tcp/4001")
	mustSend(t, s, "198.18.0.1:5000", m.signed(t, r, clk.Now()))
	resp := mustSend(t, s, "198.18.0.2:5000", w.signed(t, at("c", "198.18.0.2", 1), clk.Now()))
	if p, ok := find(resp.Peers, m.id); !ok || !slices.Equal(p.Addrs, []string{"/ip4/198.18.0.1/tcp/4001"}) {
		t.Fatalf("peers %+v, want m with only its observed address", resp.Peers)
	}
	ev := log.of(audit.KindAnnounceRejected)
	// Recorded, but with no address in the free-text reason: only the IP
	// field, which the audit log pseudonymises, carries one.
	if len(ev) != 1 || !strings.Contains(ev[0].Reason, "foreign address dropped") || strings.Contains(ev[0].Reason, "198.18.") {
		t.Fatalf("audit %+v, want the dropped foreign address recorded without naming it", ev)
	}
}

// TestSybilPrefixGetsAtMostK: 10,000 identities (real keys, signed) from
// one /24 get at most MaxPerPrefix slots in any returned peer set, and
// honest peers from other networks are still returned. Half the identities
// claim the asker's region, the others a region each, so neither the
// same-region pass nor the other-regions pass lets more through.
func TestSybilPrefixGetsAtMostK(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 1000
	}
	s, clk, _ := newStrictServer(t, func(c *Config) { c.RatePerIP, c.RatePerPrefix = -1, -1 })
	for i := range n {
		ip := fmt.Sprintf("198.18.7.%d", 1+i%254)
		r := at("c", ip, 4001+i)
		r.Region = "eu"
		if i%2 == 1 {
			r.Region = fmt.Sprint("r", i)
		}
		mustSend(t, s, ip+":5000", newPeer(t, uint64(1000+i)).signed(t, r, clk.Now()))
	}
	var honest []string
	for i := range 6 {
		ip := fmt.Sprintf("198.19.%d.1", i)
		p := newPeer(t, uint64(i+1))
		honest = append(honest, p.id)
		mustSend(t, s, ip+":5000", p.signed(t, at("c", ip, 4001), clk.Now()))
	}
	asker := newPeer(t, 99)
	for round := range 20 {
		r := at("c", "203.0.113.5", 4001)
		r.NumWant, r.Region = 50, "eu"
		resp := mustSend(t, s, "203.0.113.5:5000", asker.signed(t, r, clk.Now().Add(time.Duration(round)*time.Millisecond)))
		sybils, found := 0, 0
		for _, p := range resp.Peers {
			if slices.Contains(honest, p.Peer) {
				found++
			} else {
				sybils++
			}
		}
		if sybils > DefaultMaxPerPrefix {
			t.Fatalf("round %d: %d peers from the Sybil /24 in one set, want at most %d", round, sybils, DefaultMaxPerPrefix)
		}
		if found != len(honest) {
			t.Fatalf("round %d: %d of %d honest peers returned (set of %d)", round, found, len(honest), len(resp.Peers))
		}
	}
}

func TestRateLimits(t *testing.T) {
	s, clk, log := newStrictServer(t, func(c *Config) {
		c.RatePerIP, c.BurstPerIP = 1, 3
		c.RatePerPrefix, c.BurstPerPrefix = 1, 5
	})
	p := newPeer(t, 1)
	n := 0
	sendFrom := func(ip string) int {
		n++
		code, _, _ := send(t, s, ip+":5000", p.signed(t, at(fmt.Sprint("c", n), ip, 1), clk.Now().Add(time.Duration(n)*time.Millisecond)))
		return code
	}
	for i := range 3 {
		if code := sendFrom("198.18.0.1"); code != http.StatusOK {
			t.Fatalf("announce %d within the burst: HTTP %d", i, code)
		}
	}
	if code := sendFrom("198.18.0.1"); code != http.StatusTooManyRequests {
		t.Fatalf("announce over the per-IP burst: HTTP %d, want 429", code)
	}
	sendFrom("198.18.0.1")
	// Two more addresses of the same /24 exhaust its burst of 5.
	for _, ip := range []string{"198.18.0.2", "198.18.0.3"} {
		if code := sendFrom(ip); code != http.StatusOK {
			t.Fatalf("%s: HTTP %d", ip, code)
		}
	}
	if code := sendFrom("198.18.0.4"); code != http.StatusTooManyRequests {
		t.Fatalf("announce over the per-prefix burst: HTTP %d, want 429", code)
	}
	if code := sendFrom("198.18.1.1"); code != http.StatusOK {
		t.Fatalf("another /24: HTTP %d, want 200", code)
	}
	if got := metricLabel(t, s, `shoal_tracker_announces_total{result="limited"}`); got != 3 {
		t.Errorf("rate-limited announces counted %v, want 3", got)
	}
	clk.Advance(2 * time.Second) // refills
	if code := sendFrom("198.18.0.1"); code != http.StatusOK {
		t.Fatalf("after the refill: HTTP %d, want 200", code)
	}
	// One audit event per run of refusals per limiter, not one per request.
	if ev := log.of(audit.KindAnnounceRejected); len(ev) != 2 || !strings.Contains(ev[0].Reason, "rate limit") {
		t.Fatalf("audit %+v, want 2 rate-limit events", ev)
	}
}

func TestCaps(t *testing.T) {
	s, clk, _ := newStrictServer(t, func(c *Config) {
		c.RatePerIP, c.RatePerPrefix = -1, -1
		c.MaxSwarmPeers, c.MaxSwarms = 2, 2
	})
	ps := []testPeer{newPeer(t, 1), newPeer(t, 2), newPeer(t, 3)}
	for i, p := range ps {
		ip := fmt.Sprintf("198.18.%d.1", i)
		resp := mustSend(t, s, ip+":5000", p.signed(t, at("c", ip, 1), clk.Now()))
		if i == 2 && len(resp.Peers) != 2 {
			t.Fatalf("peer over the swarm cap got %d peers, want the 2 listed", len(resp.Peers))
		}
	}
	if sw := s.Swarms(); len(sw) != 1 || sw[0].Peers != 2 {
		t.Fatalf("swarms %+v, want one of 2 peers (the third answered, not listed)", sw)
	}
	if got := metricLabel(t, s, "shoal_tracker_unlisted_total"); got != 1 {
		t.Errorf("unlisted counter %v, want 1", got)
	}
	mustSend(t, s, "198.18.0.1:5000", ps[0].signed(t, at("d", "198.18.0.1", 1), clk.Now().Add(time.Millisecond)))
	code, _, msg := send(t, s, "198.18.0.1:5000", ps[0].signed(t, at("e", "198.18.0.1", 1), clk.Now().Add(2*time.Millisecond)))
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "full") {
		t.Fatalf("third swarm over a cap of 2: HTTP %d %q, want 503 tracker full", code, msg)
	}
}

// tokenAuth is a fake Authorize: token "tenant/region" grants that tenant
// and region; contents named in restricted may go to those regions only.
func tokenAuth(restricted map[core.ContentID][]string) Authorizer {
	return func(_ context.Context, r AuthRequest) (Grant, error) {
		tenant, region, ok := strings.Cut(r.Token, "/")
		if !ok || tenant == "" {
			return Grant{}, errors.New("no valid token")
		}
		return Grant{Tenant: tenant, Region: region, Regions: restricted[r.Content]}, nil
	}
}

func TestTenantsNeverSeeEachOther(t *testing.T) {
	s, clk, log := newStrictServer(t, func(c *Config) { c.Authorize = tokenAuth(nil) })
	a1, a2, b1 := newPeer(t, 1), newPeer(t, 2), newPeer(t, 3)
	with := func(p testPeer, tok, ip string) discovery.AnnounceRequest {
		r := at("same", ip, 1)
		r.Token = tok
		return p.signed(t, r, clk.Now())
	}
	mustSend(t, s, "198.18.0.1:5000", with(a1, "acme/", "198.18.0.1"))
	if resp := mustSend(t, s, "198.18.1.1:5000", with(b1, "globex/", "198.18.1.1")); len(resp.Peers) != 0 {
		t.Fatalf("tenant globex learned %+v of acme's swarm", resp.Peers)
	}
	resp := mustSend(t, s, "198.18.2.1:5000", with(a2, "acme/", "198.18.2.1"))
	if got := peerIDs(resp.Peers); !slices.Equal(got, []string{a1.id}) {
		t.Fatalf("acme peer got %v, want only the other acme peer", got)
	}

	// No token: 403, no peers, and the entry it names is untouched.
	clk.Advance(time.Millisecond)
	stop := at("same", "198.18.0.1", 1)
	stop.Event = discovery.EventStopped
	code, _, msg := send(t, s, "198.18.0.1:5000", a1.signed(t, stop, clk.Now()))
	if code != http.StatusForbidden || !strings.Contains(msg, "token refused") {
		t.Fatalf("announce without a token: HTTP %d %q, want 403 token refused", code, msg)
	}
	sw := s.Swarms()
	if len(sw) != 2 || sw[0].Tenant != "acme" || sw[0].Peers != 2 {
		t.Fatalf("swarms %+v, want acme's with 2 peers and globex's", sw)
	}
	if ev := log.of(audit.KindTokenRefused); len(ev) != 1 || ev[0].Peer != a1.id {
		t.Fatalf("audit %+v, want one token.refused for the peer", ev)
	}
	if ev := log.of(audit.KindJoin); len(ev) != 3 || ev[0].Tenant != "acme" || ev[1].Tenant != "globex" {
		t.Fatalf("join events %+v, want 3 with tenants", ev)
	}
}

func TestResidency(t *testing.T) {
	euOnly := content("eu-only")
	s, clk, log := newStrictServer(t, func(c *Config) {
		c.Authorize = tokenAuth(map[core.ContentID][]string{euOnly: {"eu"}})
	})
	with := func(p testPeer, c, tok, claimed, ip string) discovery.AnnounceRequest {
		r := at(c, ip, 1)
		r.Token, r.Region = tok, claimed
		return p.signed(t, r, clk.Now())
	}
	eu1, eu2, us := newPeer(t, 1), newPeer(t, 2), newPeer(t, 3)
	mustSend(t, s, "198.18.0.1:5000", with(eu1, "eu-only", "acme/eu", "", "198.18.0.1"))
	// A peer whose token says us, claiming eu, is refused: the region comes
	// from the token.
	code, resp, msg := send(t, s, "198.18.1.1:5000", with(us, "eu-only", "acme/us", "eu", "198.18.1.1"))
	if code != http.StatusForbidden || len(resp.Peers) != 0 || !strings.Contains(msg, "region") {
		t.Fatalf("us peer for an eu-only content: HTTP %d %q, want 403 about its region", code, msg)
	}
	resp = mustSend(t, s, "198.18.2.1:5000", with(eu2, "eu-only", "acme/eu", "us", "198.18.2.1"))
	if len(resp.Peers) != 1 || resp.Peers[0].Peer != eu1.id || resp.Peers[0].Region != "eu" {
		t.Fatalf("eu peer got %+v, want eu1 in eu", resp.Peers)
	}
	if ev := log.of(audit.KindTokenRefused); len(ev) != 1 || !strings.Contains(ev[0].Reason, "region") {
		t.Fatalf("audit %+v, want the region refusal", ev)
	}
}

func TestJoinLeaveAudit(t *testing.T) {
	s, clk, log := newStrictServer(t, nil)
	a, b := newPeer(t, 1), newPeer(t, 2)
	mustSend(t, s, "198.18.0.1:5000", a.signed(t, at("c", "198.18.0.1", 1), clk.Now()))
	mustSend(t, s, "198.18.0.2:5000", b.signed(t, at("c", "198.18.0.2", 1), clk.Now()))
	stop := at("c", "198.18.0.1", 1)
	stop.Event = discovery.EventStopped
	mustSend(t, s, "198.18.0.1:5000", a.signed(t, stop, clk.Now().Add(time.Millisecond)))
	clk.Advance(time.Hour)
	s.Sweep()
	joins, leaves := log.of(audit.KindJoin), log.of(audit.KindLeave)
	if len(joins) != 2 || len(leaves) != 2 {
		t.Fatalf("joins %+v leaves %+v, want 2 of each", joins, leaves)
	}
	if leaves[0].Peer != a.id || leaves[0].Reason != "stopped" || leaves[1].Peer != b.id || leaves[1].Reason != "expired" {
		t.Fatalf("leaves %+v, want a stopped then b expired", leaves)
	}
	if leaves[1].Content != content("c").String() || leaves[1].IP != "198.18.0.2" {
		t.Fatalf("leave event %+v lacks the content or address", leaves[1])
	}
}

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestForwardedForOnlyWhenTrusted(t *testing.T) {
	for _, trust := range []bool{false, true} {
		s, clk, log := newStrictServer(t, func(c *Config) { c.TrustForwarded = trust })
		p := newPeer(t, 1)
		b, _ := json.Marshal(p.signed(t, at("c", "198.18.5.5", 1), clk.Now()))
		hr := httptest.NewRequest(http.MethodPost, "/announce", bytes.NewReader(b))
		hr.RemoteAddr = "127.0.0.1:5000" // the proxy
		hr.Header.Add("X-Forwarded-For", "203.0.113.9, 198.18.5.5")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, hr)
		if rec.Code != http.StatusOK {
			t.Fatalf("trust %v: HTTP %d: %s", trust, rec.Code, rec.Body)
		}
		ev := log.of(audit.KindJoin)
		want := map[bool]string{false: "127.0.0.1", true: "198.18.5.5"}[trust]
		if len(ev) != 1 || ev[0].IP != want {
			t.Fatalf("trust %v: join %+v, want client address %s", trust, ev, want)
		}
		// The announced public address counts only when it is the client's.
		kept := len(memState(s).swarms[swarmKey{"", content("c")}].peers[p.id].addrs.public) == 1
		if kept != trust {
			t.Fatalf("trust %v: announced 198.18.5.5 kept = %v", trust, kept)
		}
	}
	s, clk, _ := newStrictServer(t, func(c *Config) { c.TrustForwarded = true })
	b, _ := json.Marshal(newPeer(t, 1).signed(t, at("c", "198.18.5.5", 1), clk.Now()))
	hr := httptest.NewRequest(http.MethodPost, "/announce", bytes.NewReader(b))
	hr.Header.Set("X-Forwarded-For", "not-an-ip")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, hr)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "X-Forwarded-For") {
		t.Fatalf("bad X-Forwarded-For: HTTP %d %s, want 400 naming the header", rec.Code, rec.Body)
	}
}

// TestRefusedTokensLearnNoPeers: without a token, with an expired one, or
// with another tenant's, a peer learns none of a tenant's peers.
func TestRefusedTokensLearnNoPeers(t *testing.T) {
	auth := tokenAuth(nil)
	s, clk, log := newStrictServer(t, func(c *Config) {
		c.Authorize = func(ctx context.Context, r AuthRequest) (Grant, error) {
			if r.Token == "acme/expired" {
				return Grant{}, errors.New("token expired at 2025-12-31T00:00:00Z")
			}
			return auth(ctx, r)
		}
	})
	for i := range 3 {
		r := at("c", fmt.Sprintf("198.18.%d.1", i), 1)
		r.Token = "acme/"
		mustSend(t, s, fmt.Sprintf("198.18.%d.1:5000", i), newPeer(t, uint64(i+1)).signed(t, r, clk.Now()))
	}
	for i, tok := range []string{"", "acme/expired", "garbage", "globex/"} {
		r := at("c", "198.18.9.1", 1)
		r.Token = tok
		code, resp, msg := send(t, s, "198.18.9.1:5000", newPeer(t, uint64(100+i)).signed(t, r, clk.Now()))
		if len(resp.Peers) != 0 {
			t.Fatalf("token %q: learned %d peers of acme", tok, len(resp.Peers))
		}
		if wantOK := tok == "globex/"; (code == http.StatusOK) != wantOK {
			t.Fatalf("token %q: HTTP %d %q", tok, code, msg)
		}
	}
	if ev := log.of(audit.KindTokenRefused); len(ev) != 3 || !strings.Contains(ev[1].Reason, "expired") {
		t.Fatalf("audit %+v, want 3 token.refused, the expired one saying so", ev)
	}
}

func TestTenantSwarmCap(t *testing.T) {
	s, clk, _ := newStrictServer(t, func(c *Config) { c.Authorize, c.MaxTenantSwarms = tokenAuth(nil), 1 })
	p := newPeer(t, 1)
	n := 0
	open := func(c, tok string) int {
		n++
		r := at(c, "198.18.0.1", 1)
		r.Token = tok
		code, _, _ := send(t, s, "198.18.0.1:5000", p.signed(t, r, clk.Now().Add(time.Duration(n)*time.Millisecond)))
		return code
	}
	if code := open("c", "acme/"); code != http.StatusOK {
		t.Fatalf("acme's first swarm: HTTP %d", code)
	}
	if code := open("d", "acme/"); code != http.StatusServiceUnavailable {
		t.Fatalf("acme's second swarm over a cap of 1: HTTP %d, want 503", code)
	}
	if code := open("d", "globex/"); code != http.StatusOK {
		t.Fatalf("another tenant's swarm: HTTP %d, want 200 (the cap is per tenant)", code)
	}
}

func TestPrefixOf(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.7.9":        "198.18.7.0/24",
		"::ffff:198.18.7.9": "198.18.7.0/24",
		"2001:db8:1:2::5":   "2001:db8:1::/48",
		"127.0.0.1":         "127.0.0.1/32",
		"::1":               "::1/128",
	} {
		p := prefixOf(mustAddr(t, in))
		if p.String() != want {
			t.Errorf("prefixOf(%s) = %s, want %s", in, p, want)
		}
		wantCapped := want != "127.0.0.1/32" && want != "::1/128"
		sw := newSwarm(swarmKey{}, DefaultMaxPerPrefix)
		e := &peerEntry{id: "p", sw: sw, prefix: p}
		sw.addToGroup(e)
		if e.g[groupLocal].capped != wantCapped || e.g[groupNet].capped != wantCapped {
			t.Errorf("%s: capped = %v (local) %v (network), want %v", in, e.g[groupLocal].capped, e.g[groupNet].capped, wantCapped)
		}
	}
}

// TestLimiterTableIsBounded: the table keeps at most its size of buckets;
// the least recently used one is forgotten, not the memory grown.
func TestLimiterTableIsBounded(t *testing.T) {
	tab := newLimiterTable[int](1, 1, 2)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for key := range 3 {
		if ok, _ := tab.allow(key, now); !ok {
			t.Fatalf("key %d refused its first request", key)
		}
	}
	if n := tab.len(); n != 2 {
		t.Fatalf("table holds %d buckets, want its size 2", n)
	}
	if ok, first := tab.allow(2, now); ok || !first {
		t.Fatalf("key 2 again at once: ok %v first %v, want refused, first of a run", ok, first)
	}
	if ok, first := tab.allow(2, now); ok || first {
		t.Fatalf("key 2 a third time: ok %v first %v, want refused, not first", ok, first)
	}
	if ok, _ := tab.allow(0, now); !ok {
		t.Fatal("key 0, forgotten when the table was full, was refused")
	}
}

// TestFilteredAddrsHoldNoSpareRoom: each kind of address kept has no
// capacity beyond its addresses, since the entry holds them for the
// peer's lifetime.
func TestFilteredAddrsHoldNoSpareRoom(t *testing.T) {
	obs := netip.MustParseAddr("203.0.113.7")
	pa, _ := filterAddrs([]string{"/ip4/203.0.113.7/tcp/4001", "/ip4/10.0.0.2/tcp/4001", "/ip4/198.51.100.9/tcp/4001",
		"/ip4/10.0.0.3/tcp/4001", "/ip4/224.0.0.1/tcp/4001"}, obs, nil)
	for name, kind := range map[string][]string{"public": pa.public, "private": pa.private, "loopback": pa.loopback} {
		if cap(kind) != len(kind) {
			t.Errorf("%s addresses %v: capacity %d, want %d", name, kind, cap(kind), len(kind))
		}
	}
	if len(pa.public) != 1 || len(pa.private) != 2 {
		t.Fatalf("kept %v public, %v private; want 1 and 2", pa.public, pa.private)
	}
}
