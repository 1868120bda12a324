package tracker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/manifest"
)

// TestGrantRefusedOnceRootWithdrawn: a ticket's grant stands only while
// its root key is trusted. Once the publisher key is dropped from the trust
// set, the next announce MACed with the ticket is refused as its token
// would be (403, token refused, naming the key), without calling the
// Authorizer, and is not counted as taken on its grant.
func TestGrantRefusedOnceRootWithdrawn(t *testing.T) {
	g := newGrantRig(t)
	p := newPeer(t, 1)
	tok := g.token(t, "acme", "c", p.id, "eu", g.clk.Now().Add(2*time.Hour))
	tk := mustSend(t, g.s, "198.18.0.1:5000", g.signedWith(t, p, "c", "198.18.0.1", tok)).Session
	if tk == nil || len(tk.Grant) == 0 {
		t.Fatalf("ticket %+v; want one with a grant", tk)
	}
	mustSend(t, g.s, "198.18.0.1:5000", g.macedWith(p, "c", "198.18.0.1", tok, *tk))
	before := g.calls.Load()

	root := manifest.PublicOf(g.priv)
	g.keys.Replace(nil)
	code, _, msg := send(t, g.s, "198.18.0.1:5000", g.macedWith(p, "c", "198.18.0.1", tok, *tk))
	if code != http.StatusForbidden || !strings.Contains(msg, "token refused") || !strings.Contains(msg, root.String()) {
		t.Fatalf("MACed on a withdrawn root's grant: HTTP %d %q, want 403 token refused naming %s", code, msg, root)
	}
	if n := g.calls.Load() - before; n != 0 {
		t.Fatalf("%d authorizations for an announce refused on its grant, want none", n)
	}
	if ev := g.audit.of(audit.KindTokenRefused); len(ev) != 1 || ev[0].Tenant != "acme" {
		t.Fatalf("token refusals audited: %+v, want one of tenant acme", ev)
	}
	if got := metricLabel(t, g.s, `shoal_tracker_session_tickets_total{event="granted"}`); got != 1 {
		t.Fatalf("%v announces counted as taken on their grant, want 1 (before the withdrawal)", got)
	}
	// Trusted again: the grant stands again.
	g.keys.Replace([]manifest.PublicKey{root})
	mustSend(t, g.s, "198.18.0.1:5000", g.macedWith(p, "c", "198.18.0.1", tok, *tk))
}

// TestGrantCountedOnlyWhenAccepted: an announce on a ticket's grant that
// the store refuses (a replay) is not counted as granted.
func TestGrantCountedOnlyWhenAccepted(t *testing.T) {
	g := newGrantRig(t)
	p := newPeer(t, 1)
	tok := g.token(t, "acme", "c", p.id, "", g.clk.Now().Add(2*time.Hour))
	tk := mustSend(t, g.s, "198.18.0.1:5000", g.signedWith(t, p, "c", "198.18.0.1", tok)).Session
	r := g.macedWith(p, "c", "198.18.0.1", tok, *tk)
	mustSend(t, g.s, "198.18.0.1:5000", r)
	if code, _, msg := send(t, g.s, "198.18.0.1:5000", r); code != http.StatusForbidden {
		t.Fatalf("replayed MACed announce: HTTP %d %q, want 403", code, msg)
	}
	if got := metricLabel(t, g.s, `shoal_tracker_session_tickets_total{event="granted"}`); got != 1 {
		t.Fatalf("%v announces counted as taken on their grant, want 1", got)
	}
}

// TestVerdictReuseNeedsRegrant: with Authorize set and Regrant nil, a
// custom Authorizer that judges by the client address is asked at every
// announce: tickets carry no grant, MACed announces carry the token, and a
// verdict that changes is applied at once.
func TestVerdictReuseNeedsRegrant(t *testing.T) {
	var calls atomic.Int64
	var deny atomic.Bool
	s, clk, _ := newStrictServer(t, func(c *Config) {
		c.SessionTTL = time.Hour
		c.Authorize = func(_ context.Context, r AuthRequest) (Grant, error) {
			calls.Add(1)
			if deny.Load() {
				return Grant{}, fmt.Errorf("address %s is blocked", r.RemoteIP)
			}
			return Grant{Tenant: "acme"}, nil
		}
	})
	p := newPeer(t, 1)
	r := at("c", "198.18.0.1", 4001)
	r.Token = "tok"
	clk.Advance(time.Millisecond)
	tk := mustSend(t, s, "198.18.0.1:5000", p.signed(t, r, clk.Now())).Session
	if tk == nil || tk.Grant != nil {
		t.Fatalf("ticket %+v; want one without a grant", tk)
	}
	for i := range 3 {
		clk.Advance(time.Millisecond)
		m := maced(p, r, *tk, clk.Now())
		if m.Token != "tok" || m.Grant != nil {
			t.Fatalf("MACed announce carries token %q, grant %v; want the token", m.Token, m.Grant)
		}
		mustSend(t, s, "198.18.0.1:5000", m)
		if n := calls.Load(); n != int64(2+i) {
			t.Fatalf("after MACed announce %d: %d authorizations, want %d", i, n, 2+i)
		}
	}
	deny.Store(true)
	clk.Advance(time.Millisecond)
	if code, _, msg := send(t, s, "198.18.0.1:5000", maced(p, r, *tk, clk.Now())); code != http.StatusForbidden || !strings.Contains(msg, "blocked") {
		t.Fatalf("MACed announce once the Authorizer refuses: HTTP %d %q, want 403", code, msg)
	}
}

// TestGrantTooLongFallsBackToToken: a grant whose encoding exceeds what a
// peer keeps (discovery.MaxGrantLen) gets a ticket without a grant, whose
// announces carry the token and are accepted.
func TestGrantTooLongFallsBackToToken(t *testing.T) {
	regions := make([]string, 100)
	for i := range regions {
		regions[i] = fmt.Sprintf("%03d", i) + strings.Repeat("r", 97)
	}
	var calls atomic.Int64
	s, clk, _ := newStrictServer(t, func(c *Config) {
		c.SessionTTL = time.Hour
		c.Authorize = func(_ context.Context, r AuthRequest) (Grant, error) {
			calls.Add(1)
			if r.Token != "tok" {
				return Grant{}, errors.New("no token")
			}
			return Grant{Tenant: "acme", Region: regions[7], Regions: regions}, nil
		}
		c.Regrant = func(Grant) error { return nil }
	})
	p := newPeer(t, 1)
	r := at("c", "198.18.0.1", 4001)
	r.Token = "tok"
	clk.Advance(time.Millisecond)
	tk := mustSend(t, s, "198.18.0.1:5000", p.signed(t, r, clk.Now())).Session
	if tk == nil || tk.Grant != nil {
		t.Fatalf("ticket %+v; want one without a grant", tk)
	}
	clk.Advance(time.Millisecond)
	m := maced(p, r, *tk, clk.Now())
	if m.Token != "tok" {
		t.Fatalf("MACed announce carries token %q, want the token", m.Token)
	}
	mustSend(t, s, "198.18.0.1:5000", m)
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d authorizations, want 2: the MACed announce's token checked", n)
	}
}

// TestGrantRefusedWithoutRegrant: a tracker that does not reuse verdicts
// refuses a grant-bearing ticket (one a replica that does issued) as a bad
// ticket, so the peer signs again, rather than taking its grant.
func TestGrantRefusedWithoutRegrant(t *testing.T) {
	var calls atomic.Int64
	s, clk, _ := newStrictServer(t, func(c *Config) {
		c.SessionTTL = time.Hour
		c.Authorize = func(context.Context, AuthRequest) (Grant, error) {
			calls.Add(1)
			return Grant{Tenant: "acme"}, nil
		}
	})
	p := newPeer(t, 1)
	tk := s.sess.issueGrant(p.id, content("c"), &Grant{Tenant: "acme"}, clk.Now())
	if tk == nil || len(tk.Grant) == 0 {
		t.Fatalf("ticket %+v; want one with a grant", tk)
	}
	r := at("c", "198.18.0.1", 4001)
	r.Token = "tok"
	clk.Advance(time.Millisecond)
	code, _, msg := send(t, s, "198.18.0.1:5000", maced(p, r, *tk, clk.Now()))
	if code != http.StatusUnauthorized || !strings.Contains(msg, "takes no grants") {
		t.Fatalf("grant-bearing ticket on a tracker without Regrant: HTTP %d %q, want 401", code, msg)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d authorizations, want none", n)
	}
}
