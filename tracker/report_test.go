package tracker

import (
	"bytes"
	crand "crypto/rand"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

type identity struct {
	key crypto.PrivKey
	id  string
}

func newIdentity(t *testing.T) identity {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return identity{k, id.String()}
}

type events struct {
	mu  sync.Mutex
	evs []audit.Event
}

func (e *events) Record(ev audit.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

func (e *events) count(kind, peer string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ev.Kind == kind && ev.Peer == peer {
			n++
		}
	}
	return n
}

// report posts a report by from about offender, signed at now, as if sent
// from addr; it returns the HTTP status and body.
func report(t *testing.T, s *Server, from identity, offender string, c core.ContentID, addr string, now time.Time) (int, string) {
	t.Helper()
	r := discovery.Report{Reporter: from.id, Offender: offender, Content: c, Chunk: 2, Hash: strings.Repeat("5a", 32)}
	if err := discovery.SignReport(&r, from.key, now); err != nil {
		t.Fatal(err)
	}
	return postReport(t, s, r, addr)
}

func postReport(t *testing.T, s *Server, r discovery.Report, addr string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(r)
	req := httptest.NewRequest(http.MethodPost, discovery.ReportPath, bytes.NewReader(b))
	req.RemoteAddr = addr
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestReportsExcludeOnlyFromDistinctReporters(t *testing.T) {
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log := &events{}
	s := New(Config{AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1, Interval: time.Hour, Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)), Logger: quiet, Audit: log})
	c := content("movie")
	liar := newIdentity(t)
	var reporters []identity
	for range 4 {
		reporters = append(reporters, newIdentity(t))
	}
	joinAll := func() {
		for _, p := range append([]identity{liar}, reporters...) {
			announce(t, s, req("movie", p.id, "", 0))
		}
	}
	joinAll()
	handedOut := func() bool {
		resp := announce(t, s, req("movie", "viewer", "", 100))
		return slices.Contains(peerIDs(resp.Peers), liar.id)
	}
	mustAccept := func(from identity, addr string) {
		t.Helper()
		if code, body := report(t, s, from, liar.id, c, addr, clk.Now()); code != http.StatusAccepted {
			t.Fatalf("report by %s from %s: HTTP %d %s", from.id, addr, code, body)
		}
	}

	mustAccept(reporters[0], "198.18.1.5:4000")
	if !handedOut() {
		t.Fatal("one report excluded the reported peer")
	}
	// The same reporter again, and another from the same /24: still one network.
	mustAccept(reporters[0], "198.18.1.5:4000")
	mustAccept(reporters[1], "198.18.1.77:4000")
	if !handedOut() {
		t.Fatal("reports from one /24 excluded the reported peer")
	}
	mustAccept(reporters[2], "198.18.2.5:4000")
	if !handedOut() {
		t.Fatal("two distinct reporters excluded the reported peer (threshold 3)")
	}
	mustAccept(reporters[3], "198.18.3.5:4000")
	if handedOut() {
		t.Fatal("three distinct reporters from three networks: the reported peer is still handed out")
	}
	if n := log.count(audit.KindReport, liar.id); n != 5 {
		t.Errorf("%d report events, want 5", n)
	}
	if n := log.count(audit.KindBan, liar.id); n != 1 {
		t.Errorf("%d ban events, want 1", n)
	}

	// Reports decay: two half-lives later three reports weigh 0.75.
	clk.Advance(2 * DefaultReportHalfLife)
	joinAll()
	if !handedOut() {
		t.Fatal("reported peer still withheld after its reports decayed")
	}
	if n := log.count(audit.KindUnban, liar.id); n != 1 {
		t.Errorf("%d unban events, want 1", n)
	}
}

func TestReportRefusals(t *testing.T) {
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := New(Config{AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1, Interval: time.Hour, Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)), Logger: quiet})
	c := content("app")
	a, b, stranger := newIdentity(t), newIdentity(t), newIdentity(t)
	announce(t, s, req("app", a.id, "", 0))
	announce(t, s, req("app", b.id, "", 0))
	now := clk.Now()

	forged := discovery.Report{Reporter: a.id, Offender: b.id, Content: c, Chunk: 1, Hash: strings.Repeat("00", 32)}
	if err := discovery.SignReport(&forged, stranger.key, now); err != nil { // signed by someone else
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		code  int
		field string
		send  func() (int, string)
	}{
		{"signed by another key", 400, "sig", func() (int, string) { return postReport(t, s, forged, "198.18.0.1:1") }},
		{"stale", 400, "time", func() (int, string) {
			return report(t, s, a, b.id, c, "198.18.0.2:1", now.Add(-time.Hour))
		}},
		{"offender not in the swarm", 400, "offender", func() (int, string) {
			return report(t, s, a, stranger.id, c, "198.18.0.3:1", now)
		}},
		{"reporter not in the swarm", 400, "offender", func() (int, string) {
			return report(t, s, stranger, b.id, c, "198.18.0.4:1", now)
		}},
		{"other content", 400, "offender", func() (int, string) {
			return report(t, s, a, b.id, content("other"), "198.18.0.5:1", now)
		}},
		{"not JSON", 400, "body", func() (int, string) {
			req := httptest.NewRequest(http.MethodPost, discovery.ReportPath, strings.NewReader("nope"))
			req.RemoteAddr = "198.18.0.6:1"
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			return rec.Code, rec.Body.String()
		}},
	}
	for _, tc := range tests {
		code, body := tc.send()
		var resp struct{ Error, Field string }
		json.Unmarshal([]byte(body), &resp)
		if code != tc.code || resp.Field != tc.field || resp.Error == "" {
			t.Errorf("%s: HTTP %d %s, want %d naming field %q", tc.name, code, body, tc.code, tc.field)
		}
	}

	// Rate limit per address: a burst of DefaultReportsPerMinute, then 429.
	for k := range DefaultReportsPerMinute {
		if code, body := report(t, s, a, b.id, c, "198.18.9.9:1", now); code != http.StatusAccepted {
			t.Fatalf("report %d within the burst: HTTP %d %s", k, code, body)
		}
	}
	if code, body := report(t, s, a, b.id, c, "198.18.9.9:1", now); code != http.StatusTooManyRequests || !strings.Contains(body, "198.18.9.0/24") {
		t.Fatalf("report past the burst: HTTP %d %s, want 429 naming the network", code, body)
	}
	clk.Advance(time.Minute)
	announce(t, s, req("app", a.id, "", 0))
	announce(t, s, req("app", b.id, "", 0))
	if code, body := report(t, s, a, b.id, c, "198.18.9.9:1", clk.Now()); code != http.StatusAccepted {
		t.Fatalf("report a minute later: HTTP %d %s", code, body)
	}
}

func TestReportTablesBounded(t *testing.T) {
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	rs := newReports(Config{ReportThreshold: 3, ReportHalfLife: time.Hour, MaxOffenders: 10, ReportsPerMinute: 10, Clock: clk}.withDefaults(), prometheus.NewRegistry())
	for k := range 100 {
		off := string(rune('A'+k%26)) + strings.Repeat("x", k/26)
		for r := range 40 {
			rs.add(off, "r"+string(rune('a'+r%26))+strings.Repeat("y", r/26), "net"+string(rune('a'+r%26))+strings.Repeat("z", r/26), clk.Now())
		}
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.lru.Len() != 10 || len(rs.offenders) != 10 {
		t.Fatalf("%d offenders kept (map %d), bound 10", rs.lru.Len(), len(rs.offenders))
	}
	for _, el := range rs.offenders {
		if o := el.Value.(*offender); len(o.by) > maxReportersPerOffender {
			t.Fatalf("offender %s keeps %d reports, bound %d", o.id, len(o.by), maxReportersPerOffender)
		}
	}
	if rs.excluded != 10 {
		t.Fatalf("excluded count %d after evictions, want 10 (every kept offender)", rs.excluded)
	}
}
