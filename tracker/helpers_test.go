package tracker

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/valyala/fasthttp"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func content(name string) core.ContentID { return core.ContentID(core.SumSHA256([]byte(name))) }

const testAdminToken = "test-admin-token"

// newTestServer returns a tracker on a manual clock with a seeded source,
// for tests of what the tracker does with announces once it accepts them:
// it takes unsigned ones from peers named by short strings, and has no rate
// limits. Tests of the checks use newStrictServer.
func newTestServer(t testing.TB, seed uint64) (*Server, *core.ManualClock) {
	t.Helper()
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := New(Config{
		Interval: 10 * time.Second, MaxPeers: 50, Clock: clk, Rand: rand.New(rand.NewPCG(seed, seed)), Logger: quiet,
		AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1, AdminToken: testAdminToken,
	})
	return s, clk
}

func req(c, peer, region string, left int64) discovery.AnnounceRequest {
	return discovery.AnnounceRequest{
		Content: content(c), Peer: peer, Region: region, Left: left,
		Addrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 1000+len(peer))},
	}
}

// post sends body to the handler directly (no network) from a client on
// the tracker's loopback, and returns the status and raw body.
func post(t testing.TB, s *Server, body []byte) (int, []byte) {
	t.Helper()
	return postFrom(t, s, "127.0.0.1:40000", body)
}

// postFrom is post from the client address remote ("ip:port"), through
// the handler Serve runs (its fast path for announces).
func postFrom(t testing.TB, s *Server, remote string, body []byte) (int, []byte) {
	t.Helper()
	status, _, b := postFast(t, s.fastHandler(), remote, nil, body)
	return status, b
}

// postFast posts body to /announce through h in process, from the
// client address remote ("ip:port") with the extra header lines hdr,
// and returns the answer's status, headers and body.
func postFast(t testing.TB, h fasthttp.RequestHandler, remote string, hdr http.Header, body []byte) (int, http.Header, []byte) {
	t.Helper()
	addr, err := net.ResolveTCPAddr("tcp", remote)
	if err != nil {
		t.Fatal(err)
	}
	var rq fasthttp.Request
	rq.Header.SetMethod(http.MethodPost)
	rq.SetRequestURI(discovery.AnnouncePath)
	for k, vs := range hdr {
		for _, v := range vs {
			rq.Header.Add(k, v)
		}
	}
	rq.SetBody(body)
	var c fasthttp.RequestCtx
	c.Init(&rq, addr, nil)
	h(&c)
	out := http.Header{}
	for k, v := range c.Response.Header.All() {
		out.Add(string(k), string(v))
	}
	status, b := c.Response.StatusCode(), bytes.Clone(c.Response.Body())
	c.Response.Reset() // as the server does between requests: its body buffer goes back to the pool
	return status, out, b
}

// postNetHTTP is postFrom through Handler (net/http).
func postNetHTTP(t testing.TB, s *Server, remote string, hdr http.Header, body []byte) (int, http.Header, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	hr := httptest.NewRequest(http.MethodPost, "/announce", bytes.NewReader(body))
	hr.RemoteAddr = remote
	for k, vs := range hdr {
		hr.Header[k] = vs
	}
	s.Handler().ServeHTTP(rec, hr)
	return rec.Code, rec.Result().Header, rec.Body.Bytes()
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
	hr := httptest.NewRequest(http.MethodGet, path, nil)
	hr.Header.Set("Authorization", "Bearer "+testAdminToken)
	s.Handler().ServeHTTP(rec, hr)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", path, rec.Code)
	}
	return rec.Body.Bytes()
}

// testPeer is a peer with a real Ed25519 key, for signed announces.
type testPeer struct {
	key crypto.PrivKey
	id  string
}

// newPeer returns the peer whose key is derived from seed.
func newPeer(t testing.TB, seed uint64) testPeer {
	t.Helper()
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	k, _, err := crypto.GenerateEd25519Key(rand.NewChaCha8(s))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return testPeer{key: k, id: id.String()}
}

// signed returns r as p's announce signed at at.
func (p testPeer) signed(t testing.TB, r discovery.AnnounceRequest, at time.Time) discovery.AnnounceRequest {
	t.Helper()
	r.Peer = p.id
	if err := r.Sign(p.key, at); err != nil {
		t.Fatal(err)
	}
	return r
}

// memState is the in-memory state of a Server made by New.
func memState(s *Server) *state { return s.store.(*memStore).st }
