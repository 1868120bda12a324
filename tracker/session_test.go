package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/internal/redistest"
)

// ticketServer is a strict tracker handing out tickets of ttl with secret
// key (nil: random).
func ticketServer(t *testing.T, ttl time.Duration, key []byte) (*Server, func() time.Time, *auditLog) {
	t.Helper()
	s, clk, log := newStrictServer(t, func(c *Config) { c.SessionTTL, c.SessionKey = ttl, key })
	return s, clk.Now, log
}

// ticketFor makes p's signed announce and returns the ticket the answer
// carries.
func ticketFor(t *testing.T, s *Server, now time.Time, p testPeer, ip string) discovery.Session {
	t.Helper()
	resp := mustSend(t, s, ip+":5000", p.signed(t, at("c", ip, 4001), now))
	if resp.Session == nil || len(resp.Session.Key) != discovery.SessionKeyLen {
		t.Fatalf("signed announce answered %+v, want a session ticket with a %d-byte key", resp.Session, discovery.SessionKeyLen)
	}
	return *resp.Session
}

// maced returns r as p's announce MACed with ticket tk at at.
func maced(p testPeer, r discovery.AnnounceRequest, tk discovery.Session, at time.Time) discovery.AnnounceRequest {
	r.Peer = p.id
	r.MACWith(tk, at)
	return r
}

func TestMACedAnnounceActsAsSigned(t *testing.T) {
	s, now, log := ticketServer(t, time.Hour, nil)
	p, w := newPeer(t, 1), newPeer(t, 2)
	tk := ticketFor(t, s, now(), p, "198.18.0.1")
	if want := now().Add(time.Hour).Unix(); tk.Exp != want {
		t.Fatalf("ticket exp %d, want now + 1 h = %d", tk.Exp, want)
	}

	// A MACed re-announce with new addresses and counters is taken as a
	// signed one would be: the watcher sees them.
	r := at("c", "198.18.0.1", 4002)
	r.Left = 0
	resp := mustSend(t, s, "198.18.0.1:5000", maced(p, r, tk, now().Add(time.Millisecond)))
	if resp.Session != nil {
		t.Errorf("MACed announce with a fresh ticket got another ticket %+v; want none until a third of its life is left", resp.Session)
	}
	wr := mustSend(t, s, "198.18.0.2:5000", w.signed(t, at("c", "198.18.0.2", 4001), now()))
	got, ok := find(wr.Peers, p.id)
	if !ok || !got.Seed || !slices.Equal(got.Addrs, []string{"/ip4/198.18.0.1/tcp/4002"}) {
		t.Fatalf("watcher sees %+v, want the MACed peer as a seed at its new address", wr.Peers)
	}

	// A stopped announce MACed with the ticket removes the peer.
	stop := at("c", "198.18.0.1", 4002)
	stop.Event = discovery.EventStopped
	mustSend(t, s, "198.18.0.1:5000", maced(p, stop, tk, now().Add(2*time.Millisecond)))
	wr = mustSend(t, s, "198.18.0.2:5000", w.signed(t, at("c", "198.18.0.2", 4001), now().Add(time.Millisecond)))
	if _, ok := find(wr.Peers, p.id); ok {
		t.Fatalf("peer still listed after its MACed stopped announce: %+v", wr.Peers)
	}
	if ev := log.of(audit.KindAnnounceRejected); len(ev) != 0 {
		t.Fatalf("audit %+v: want no refusal", ev)
	}
	for ev, want := range map[string]float64{"issued": 3, "accepted": 2} { // p once, w twice; p's two MACed
		if got := metricLabel(t, s, `shoal_tracker_session_tickets_total{event="`+ev+`"}`); got != want {
			t.Errorf("tickets %s: %v, want %v", ev, got, want)
		}
	}
}

// TestTicketNeverRenewsItself: an announce MACed with a ticket, even in the
// ticket's last minutes, gets no new ticket (one that leaked is good until
// its exp and no longer); a signed announce gets a fresh one, which works.
func TestTicketNeverRenewsItself(t *testing.T) {
	s, clk, _ := newStrictServer(t, func(c *Config) { c.SessionTTL = time.Hour })
	p := newPeer(t, 1)
	tk := ticketFor(t, s, clk.Now(), p, "198.18.0.1")
	for _, left := range []time.Duration{21 * time.Minute, 2 * time.Minute} {
		clk.T = time.Unix(tk.Exp, 0).Add(-left)
		if resp := mustSend(t, s, "198.18.0.1:5000", maced(p, at("c", "198.18.0.1", 4001), tk, clk.Now())); resp.Session != nil {
			t.Fatalf("MACed announce with %v of the ticket left got a new ticket: %+v", left, resp.Session)
		}
	}
	clk.Advance(time.Millisecond)
	fresh := ticketFor(t, s, clk.Now(), p, "198.18.0.1")
	if fresh.Exp != clk.Now().Add(time.Hour).Unix() || bytes.Equal(fresh.Key, tk.Key) {
		t.Fatalf("signed announce got %+v, want a fresh ticket for another hour", fresh)
	}
	mustSend(t, s, "198.18.0.1:5000", maced(p, at("c", "198.18.0.1", 4001), fresh, clk.Now().Add(time.Millisecond)))
}

func TestBadTicketsRefused(t *testing.T) {
	const ip = "198.18.0.1"
	other := New(Config{SessionTTL: time.Hour, Logger: quiet}) // another secret K
	cases := []struct {
		name string
		// mk returns the announce to send, given a fresh server's clock and
		// the valid ticket of peer p.
		mk     func(t *testing.T, s *Server, now time.Time, p, q testPeer, tk discovery.Session) discovery.AnnounceRequest
		status int
		reason string
	}{
		{"mac for another peer ID", func(t *testing.T, s *Server, now time.Time, p, q testPeer, tk discovery.Session) discovery.AnnounceRequest {
			return maced(q, at("c", ip, 4001), tk, now.Add(time.Millisecond)) // q uses p's ticket
		}, http.StatusUnauthorized, discovery.ErrSessionInvalid.Error()},
		{"forged key", func(t *testing.T, s *Server, now time.Time, p, q testPeer, tk discovery.Session) discovery.AnnounceRequest {
			tk.Key = bytes.Repeat([]byte{7}, discovery.SessionKeyLen)
			return maced(p, at("c", ip, 4001), tk, now.Add(time.Millisecond))
		}, http.StatusUnauthorized, discovery.ErrSessionInvalid.Error()},
		{"exp moved later", func(t *testing.T, s *Server, now time.Time, p, q testPeer, tk discovery.Session) discovery.AnnounceRequest {
			tk.Exp += 60
			return maced(p, at("c", ip, 4001), tk, now.Add(time.Millisecond))
		}, http.StatusUnauthorized, discovery.ErrSessionInvalid.Error()},
		{"ticket from another K", func(t *testing.T, s *Server, now time.Time, p, q testPeer, tk discovery.Session) discovery.AnnounceRequest {
			foreign := other.sess.issue(p.id, 0, now)
			return maced(p, at("c", ip, 4001), *foreign, now.Add(time.Millisecond))
		}, http.StatusUnauthorized, discovery.ErrSessionInvalid.Error()},
		{"mac over modified fields", func(t *testing.T, s *Server, now time.Time, p, q testPeer, tk discovery.Session) discovery.AnnounceRequest {
			r := maced(p, at("c", ip, 4001), tk, now.Add(time.Millisecond))
			r.Addrs = []string{"/ip4/198.18.9.9/tcp/22"}
			return r
		}, http.StatusUnauthorized, discovery.ErrSessionInvalid.Error()},
		{"replayed (same ts)", func(t *testing.T, s *Server, now time.Time, p, q testPeer, tk discovery.Session) discovery.AnnounceRequest {
			r := maced(p, at("c", ip, 4001), tk, now.Add(time.Millisecond))
			mustSend(t, s, ip+":5000", r)
			return r
		}, http.StatusForbidden, "replayed"},
		{"stale ts", func(t *testing.T, s *Server, now time.Time, p, q testPeer, tk discovery.Session) discovery.AnnounceRequest {
			return maced(p, at("c", ip, 4001), tk, now.Add(-DefaultClockSkew-time.Second))
		}, http.StatusForbidden, "timestamp"},
		{"expired ticket", func(t *testing.T, s *Server, now time.Time, p, q testPeer, tk discovery.Session) discovery.AnnounceRequest {
			s.cfg.Clock.(interface{ Advance(time.Duration) }).Advance(time.Hour)
			return maced(p, at("c", ip, 4001), tk, now.Add(time.Hour))
		}, http.StatusUnauthorized, discovery.ErrSessionExpired.Error()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, now, _ := ticketServer(t, time.Hour, nil)
			p, q := newPeer(t, 1), newPeer(t, 2)
			tk := ticketFor(t, s, now(), p, ip)
			r := c.mk(t, s, now(), p, q, tk)
			code, _, msg := send(t, s, ip+":5000", r)
			if code != c.status || !strings.Contains(msg, c.reason) {
				t.Fatalf("HTTP %d %q, want %d containing %q", code, msg, c.status, c.reason)
			}
			if (c.status == http.StatusUnauthorized) != discovery.IsSessionRefusal(&textErr{msg}) {
				t.Fatalf("refusal %q: the peer would take it as a ticket refusal: %v", msg, !(c.status == http.StatusUnauthorized))
			}
			if c.status == http.StatusUnauthorized {
				if got := metricLabel(t, s, `shoal_tracker_announces_total{result="ticket"}`); got != 1 {
					t.Errorf("ticket refusals counted %v, want 1", got)
				}
			}
			// The refusal changed nothing: p is still listed at its
			// signed address, q not at all.
			w := newPeer(t, 3)
			wr := mustSend(t, s, "198.18.0.3:5000", w.signed(t, at("c", "198.18.0.3", 4001), s.cfg.Clock.Now()))
			if got, ok := find(wr.Peers, p.id); c.name != "expired ticket" && (!ok || !slices.Equal(got.Addrs, []string{"/ip4/198.18.0.1/tcp/4001"})) {
				t.Fatalf("after the refusal the watcher sees %+v, want p at its signed address", wr.Peers)
			}
			if _, ok := find(wr.Peers, q.id); ok {
				t.Fatalf("q listed on p's ticket: %+v", wr.Peers)
			}
		})
	}
}

type textErr struct{ s string }

func (e *textErr) Error() string { return e.s }

func TestTicketsOff(t *testing.T) {
	s, now, _ := ticketServer(t, 0, nil)
	p := newPeer(t, 1)
	resp := mustSend(t, s, "198.18.0.1:5000", p.signed(t, at("c", "198.18.0.1", 4001), now()))
	if resp.Session != nil {
		t.Fatalf("tickets off, yet the answer carries %+v", resp.Session)
	}
	// A MAC made with what would have been a ticket is refused all the same.
	on := New(Config{SessionTTL: time.Hour, SessionKey: s.cfg.SessionKey, Logger: quiet})
	tk := on.sess.issue(p.id, 0, now())
	code, _, msg := send(t, s, "198.18.0.1:5000", maced(p, at("c", "198.18.0.1", 4001), *tk, now().Add(time.Millisecond)))
	if code != http.StatusUnauthorized || !strings.Contains(msg, discovery.ErrSessionInvalid.Error()) || !strings.Contains(msg, "issues no session tickets") {
		t.Fatalf("MAC on a tracker without tickets: HTTP %d %q, want 401 saying it issues none", code, msg)
	}
}

func TestSharedKeyTicketWorksOnReplica(t *testing.T) {
	key := bytes.Repeat([]byte("k"), MinSessionKeyLen)
	a, now, _ := ticketServer(t, time.Hour, key)
	b, _, _ := ticketServer(t, time.Hour, key)
	p := newPeer(t, 1)
	tk := ticketFor(t, a, now(), p, "198.18.0.1")
	mustSend(t, b, "198.18.0.1:5000", maced(p, at("c", "198.18.0.1", 4001), tk, now().Add(time.Millisecond)))
}

// TestAnnouncerFallsBackAfterRestart runs a real Announcer against the
// tracker over HTTP: it signs once, MACs with the ticket, and when the
// tracker restarts with a new secret it signs exactly once more.
func TestAnnouncerFallsBackAfterRestart(t *testing.T) {
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	mk := func() *Server {
		return New(Config{Interval: time.Hour, Clock: clk, Logger: quiet, SessionTTL: time.Hour, RatePerIP: -1, RatePerPrefix: -1})
	}
	var (
		mu  sync.Mutex // guards cur and log
		cur = mk()
		log []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req discovery.AnnounceRequest
		_ = json.Unmarshal(body, &req)
		kind := "sig"
		if len(req.MAC) > 0 {
			kind = "mac"
		}
		mu.Lock()
		s := cur
		mu.Unlock()
		rec := httptest.NewRecorder()
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.Handler().ServeHTTP(rec, r)
		mu.Lock()
		log = append(log, fmt.Sprintf("%s %d", kind, rec.Code))
		mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	defer srv.Close()
	entries := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(log) }
	wait := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for len(entries()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("tracker saw %q, want %d announces", entries(), n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}

	tc, err := discovery.NewTrackerClient(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(t, 1)
	a, err := discovery.NewAnnouncer(discovery.AnnouncerConfig{
		Tracker: tc, Content: content("c"), Peer: p.id, Addrs: []string{"/ip4/127.0.0.1/tcp/4001"},
		Signer: p.key, Clock: clk, Logger: quiet, MinInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	wait(1)
	a.AnnounceNow()
	wait(2)
	mu.Lock()
	cur = mk() // restart: a new random secret
	mu.Unlock()
	a.AnnounceNow()
	wait(4)
	a.AnnounceNow()
	wait(5)
	cancel()
	<-done
	got := strings.Join(entries(), ", ")
	if want := "sig 200, mac 200, mac 401, sig 200, mac 200, mac 200"; got != want { // the last: "stopped"
		t.Fatalf("tracker saw %s\nwant        %s", got, want)
	}
}

// TestRedisReplicasShareSessionSecret: replicas on one Redis, given no
// secret, agree on one kept there, so a ticket one hands out is good on
// another; a replica given its own secret keeps it.
func TestRedisReplicasShareSessionSecret(t *testing.T) {
	rds := redistest.Start(t)
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	open := func(key []byte) *Server {
		s, err := Open(context.Background(), Config{Interval: 10 * time.Second, Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)),
			Logger: quiet, SessionTTL: time.Hour, SessionKey: key, Redis: rds.URL(), RedisPrefix: "t:" + t.Name() + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(nil), open(nil)
	own := open(bytes.Repeat([]byte("o"), MinSessionKeyLen))
	p := newPeer(t, 1)
	tk := ticketFor(t, a, clk.Now(), p, "198.18.0.1")
	mustSend(t, b, "198.18.0.1:5000", maced(p, at("c", "198.18.0.1", 4001), tk, clk.Now().Add(time.Millisecond)))
	code, _, reason := send(t, own, "198.18.0.1:5000", maced(p, at("c", "198.18.0.1", 4001), tk, clk.Now().Add(2*time.Millisecond)))
	if code != http.StatusUnauthorized {
		t.Fatalf("replica with its own secret answered %d (%s) to the shared ticket, want 401", code, reason)
	}
}
