package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/origin"
	"github.com/shoal-cdn/shoal/publish"
)

// TestBufPoolBudget: the pool never hands out more than its budget, keeps a
// reserve from tryGet, and reuses what is put back.
func TestBufPoolBudget(t *testing.T) {
	bp := newBufPool(8 * gatewayBufSize)
	var got [][]byte
	for range 6 {
		b, err := bp.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != gatewayBufSize {
			t.Fatalf("buffer of %d bytes, want %d", len(b), gatewayBufSize)
		}
		got = append(got, b)
	}
	if b := bp.tryGet(); b != nil {
		t.Fatalf("tryGet with 6 of 8 in use took from the reserve of 2")
	}
	for range 2 {
		b, err := bp.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b)
	}
	if bp.inUse() != 8*gatewayBufSize {
		t.Fatalf("inUse = %d, want %d", bp.inUse(), 8*gatewayBufSize)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b, err := bp.get(ctx); err == nil {
		t.Fatalf("get beyond the budget returned a buffer of %d bytes", len(b))
	}
	first := &got[0][0]
	for _, b := range got {
		bp.put(b[:10]) // a shortened slice comes back whole
	}
	if bp.inUse() != 0 {
		t.Fatalf("inUse = %d after every put", bp.inUse())
	}
	b := bp.tryGet()
	if b == nil || len(b) != gatewayBufSize {
		t.Fatalf("tryGet on an idle pool = %d bytes", len(b))
	}
	if &b[0] != first {
		t.Error("a put buffer was not reused")
	}
}

// TestClientLimiterPerIP: each IP gets max responses; others are unaffected;
// a release frees a slot and forgets an idle IP.
func TestClientLimiterPerIP(t *testing.T) {
	cl := &clientLimiter{max: 2, n: map[string]int{}}
	if !cl.acquire("10.0.0.1") || !cl.acquire("10.0.0.1") {
		t.Fatal("first two refused")
	}
	if cl.acquire("10.0.0.1") {
		t.Fatal("third response of one IP accepted")
	}
	if !cl.acquire("10.0.0.2") {
		t.Fatal("another IP refused")
	}
	cl.release("10.0.0.1")
	if !cl.acquire("10.0.0.1") {
		t.Fatal("refused after a release")
	}
	cl.release("10.0.0.1")
	cl.release("10.0.0.1")
	cl.release("10.0.0.2")
	if len(cl.n) != 0 {
		t.Fatalf("idle IPs still counted: %v", cl.n)
	}
}

// boundsFixture is a content of large chunks behind an origin, and a peer
// with the given gateway limits serving it.
type boundsFixture struct {
	p    *Peer
	gw   string // gateway URL
	want []byte // big.bin
	path string // /c/ID/big.bin
}

func newBoundsFixture(t *testing.T, chunk int64, size int, lim GatewayLimits) *boundsFixture {
	t.Helper()
	src := filepath.Join(t.TempDir(), "bounds")
	genTree(t, src, "bounds", 91, map[string]int{"big.bin": size})
	want, err := os.ReadFile(filepath.Join(src, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{91}, 32))
	out := t.TempDir()
	res, err := publish.Publish(context.Background(), publish.Config{Key: key, Out: out, ChunkSize: chunk, Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	osrv, err := origin.New(origin.Config{Dir: out})
	if err != nil {
		t.Fatal(err)
	}
	ohs := httptest.NewServer(osrv.Handler())
	t.Cleanup(ohs.Close)
	h, err := netx.NewMemNetwork().NewHost("")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := NewPeer(ctx, PeerConfig{CacheDir: t.TempDir(), Origin: ohs.URL, Trust: manifest.NewKeySet(manifest.PublicOf(key)), Host: h, Gateway: lim})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	gw := httptest.NewServer(p.Gateway())
	t.Cleanup(func() {
		gw.CloseClientConnections()
		gw.Close()
		cancel()
		p.Close()
	})
	return &boundsFixture{p: p, gw: gw.URL, want: want, path: fmt.Sprintf("/c/%s/big.bin", res.ID)}
}

// stall sends a GET on a raw connection, reads the headers and a few body
// bytes, and reads no more.
func (bf *boundsFixture) stall(t *testing.T) net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(bf.gw, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// A bounded receive buffer: the kernel on our side cannot grow to take
	// the whole file (the server's send buffer is at most a few MiB).
	conn.(*net.TCPConn).SetReadBuffer(256 << 10)
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", bf.path, addr)
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 1024), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stalled reader: %s", resp.Status)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	return conn
}

func (bf *boundsFixture) get(t *testing.T, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, bf.gw+bf.path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", bf.path, err)
	}
	return resp, b
}

// idle waits until the gateway has no response in progress and every
// buffer is back in the pool.
func (bf *boundsFixture) idle(t *testing.T) {
	t.Helper()
	waitFor(t, "gateway idle", func() bool {
		return bf.p.gw.responses.Load() == 0 && bf.p.gw.pool.inUse() == 0
	})
}

// TestGatewayLargeChunksInBoundedBuffers: chunks four times a buffer are
// served byte-identical (whole and ranged) by eight concurrent readers from
// a budget of four buffers: responses wait for a buffer rather than
// failing, and every buffer goes back to the pool.
func TestGatewayLargeChunksInBoundedBuffers(t *testing.T) {
	const chunk = 4 * gatewayBufSize
	size := 3*chunk + 12345
	bf := newBoundsFixture(t, chunk, size, GatewayLimits{Memory: 4 * gatewayBufSize, BufferWait: time.Minute})
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for k := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lo, hi := 0, size
			var hdr []string
			if k%2 == 1 { // a range inside, then across chunks
				lo, hi = k*1000+chunk/3, 2*chunk+k*777
				hdr = []string{"Range", fmt.Sprintf("bytes=%d-%d", lo, hi-1)}
			}
			resp, b := bf.get(t, hdr...)
			if resp.StatusCode/100 != 2 || !bytes.Equal(b, bf.want[lo:hi]) {
				errs <- fmt.Sprintf("reader %d: %s, %d bytes, want [%d, %d) of the file", k, resp.Status, len(b), lo, hi)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	bf.idle(t)
}

// TestGatewayStalledReaderIsCut: a client that stops reading is cut after
// the stall timeout, and its response gives back its buffers.
func TestGatewayStalledReaderIsCut(t *testing.T) {
	const chunk = 1 << 20
	bf := newBoundsFixture(t, chunk, 16*chunk, GatewayLimits{StallTimeout: 2 * time.Second})
	conn := bf.stall(t)
	waitFor(t, "stalled response cut", func() bool {
		return counterValue(t, bf.p.gw.stalled) == 1
	})
	bf.idle(t)
	n, _ := io.Copy(io.Discard, conn) // what the kernel still held, then the end
	if n+100 >= int64(len(bf.want)) {
		t.Fatalf("the stalled reader got the whole file (%d bytes)", n+100)
	}
	if resp, b := bf.get(t); resp.StatusCode != 200 || !bytes.Equal(b, bf.want) {
		t.Fatalf("GET after the cut: %s, %d bytes", resp.Status, len(b))
	}
}

// TestGatewayClientStreamsLimit: beyond --gateway-client-streams responses
// in progress, a client is answered 429 with a line naming the limit; a
// slot freed lets it in again.
func TestGatewayClientStreamsLimit(t *testing.T) {
	const chunk = 1 << 20
	bf := newBoundsFixture(t, chunk, 16*chunk, GatewayLimits{ClientStreams: 2})
	c1 := bf.stall(t)
	bf.stall(t)
	resp, b := bf.get(t)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third response of one client: %s, want 429", resp.Status)
	}
	if msg := string(b); !strings.Contains(msg, "at most 2") || !strings.Contains(msg, "--gateway-client-streams") || strings.Count(msg, "\n") != 1 {
		t.Errorf("429 body %q: want one line naming the limit and its flag", msg)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if got := counterValue(t, bf.p.gw.rejected.WithLabelValues("client_streams")); got != 1 {
		t.Errorf("shoal_gateway_rejected_total{limit=client_streams} = %v, want 1", got)
	}
	c1.Close()
	waitFor(t, "a slot freed", func() bool { return bf.p.gw.responses.Load() < 2 })
	if resp, b := bf.get(t); resp.StatusCode != 200 || !bytes.Equal(b, bf.want) {
		t.Fatalf("GET after a slot freed: %s, %d bytes", resp.Status, len(b))
	}
}

// TestGatewayMemorySpentIs503: when the buffer budget stays spent for the
// buffer wait, a response is answered 503 with Retry-After before any
// header of the content goes out; once a buffer is free it is served.
func TestGatewayMemorySpentIs503(t *testing.T) {
	bf := newBoundsFixture(t, core.MinChunkSize, 100_000, GatewayLimits{Memory: gatewayBufSize, BufferWait: 50 * time.Millisecond})
	held, err := bf.p.gw.pool.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, b := bf.get(t)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("GET with the budget spent: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(string(b), "--gateway-memory") {
		t.Errorf("503 body %q does not name --gateway-memory", b)
	}
	bf.p.gw.pool.put(held)
	if resp, b := bf.get(t); resp.StatusCode != 200 || !bytes.Equal(b, bf.want) {
		t.Fatalf("GET with a buffer free: %s, %d bytes", resp.Status, len(b))
	}
	bf.idle(t)
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
