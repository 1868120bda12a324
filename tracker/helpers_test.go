package tracker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func content(name string) core.ContentID { return core.ContentID(core.SumSHA256([]byte(name))) }

// newTestServer returns a tracker on a manual clock with a seeded source.
func newTestServer(t testing.TB, seed uint64) (*Server, *core.ManualClock) {
	t.Helper()
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := New(Config{Interval: 10 * time.Second, MaxPeers: 50, Clock: clk, Rand: rand.New(rand.NewPCG(seed, seed)), Logger: quiet})
	return s, clk
}

func req(c, peer, region string, left int64) discovery.AnnounceRequest {
	return discovery.AnnounceRequest{
		Content: content(c), Peer: peer, Region: region, Left: left,
		Addrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 1000+len(peer))},
	}
}

// post sends body to the handler directly (no network) and returns the
// status and raw body.
func post(t testing.TB, s *Server, body []byte) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/announce", bytes.NewReader(body)))
	return rec.Code, rec.Body.Bytes()
}

func announce(t testing.TB, s *Server, r discovery.AnnounceRequest) discovery.AnnounceResponse {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	code, body := post(t, s, b)
	if code != http.StatusOK {
		t.Fatalf("announce %s: HTTP %d: %s", r.Peer, code, body)
	}
	var resp discovery.AnnounceResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("announce %s: %v: %s", r.Peer, err, body)
	}
	return resp
}

func peerIDs(ps []discovery.PeerInfo) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Peer
	}
	return out
}

func get(t testing.TB, s *Server, path string) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", path, rec.Code)
	}
	return rec.Body.Bytes()
}
