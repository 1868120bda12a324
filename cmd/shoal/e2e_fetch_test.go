//go:build e2e

// End-to-end tests of interest-driven fetching with real processes: a
// `shoal origin`, a `shoal tracker` and `shoal peer` daemons on loopback,
// content published with `shoal keygen` + `shoal publish`. They guard what
// a reader's request costs the origin (measured on the origin's own
// /metrics), that a small cache quota never makes a response short or a
// have-set lie, that a newcomer completes from a seed while the origin is
// down, and that a chunk damaged on disk is fetched again.
//
// Each test logs a line "FIGURE <case>: origin_requests=N origin_bytes=N".
// Every wait polls with an overall deadline; no assertion depends on timing.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/tracker"
)

const (
	fxChunk     = 256 << 10 // --chunk-size of every content here
	fxReadAhead = 4 << 20   // the peer's default --read-ahead
	fxDeadline  = 60 * time.Second
	fxHashSize  = 32 // bytes per chunk in a hash layer
)

// fxClient talks to gateways and daemons; requests carry their own deadlines.
var fxClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

// fxRig is one test's world: the binary, a publisher key, an origin layout,
// and the processes started on it.
type fxRig struct {
	t          *testing.T
	bin, dir   string
	key, pub   string
	layout     string
	origin     *fxProc
	originURL  string
	trackerURL string
	nPeers     int
}

func newFxRig(t *testing.T) *fxRig {
	t.Helper()
	r := &fxRig{t: t, bin: buildShoal(t), dir: t.TempDir()}
	r.key = filepath.Join(r.dir, "publisher.pem")
	r.layout = filepath.Join(r.dir, "www")
	pub, e, code := runBin(t, r.bin, "keygen", "-o", r.key)
	if code != 0 {
		t.Fatalf("keygen exit %d: %s", code, e)
	}
	r.pub = strings.TrimSpace(pub)
	return r
}

// fxFile is a published file whose bytes come from a seed, so a failure
// reproduces.
type fxFile struct {
	path string
	size int64
	seed uint64
}

// fxContent is a published content and where its sources are.
type fxContent struct {
	id    string
	src   string // directory holding the sources, by their paths
	files map[string]fxSource
}

type fxSource struct {
	size int64
	sum  [32]byte
}

// layerBytes is the size of the hash layer of a file of size bytes.
func layerBytes(size int64) int64 { return (size + fxChunk - 1) / fxChunk * fxHashSize }

// publish writes the files (seeded bytes) and publishes them as one content.
func (r *fxRig) publish(name string, files ...fxFile) *fxContent {
	t := r.t
	t.Helper()
	c := &fxContent{src: filepath.Join(r.dir, "src-"+name), files: map[string]fxSource{}}
	for _, f := range files {
		p := filepath.Join(c.src, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		sum, err := writeSeeded(p, f.size, f.seed)
		if err != nil {
			t.Fatal(err)
		}
		c.files[f.path] = fxSource{f.size, sum}
	}
	out, e, code := runBin(t, r.bin, "publish", "--key", r.key, "--out", r.layout,
		"--chunk-size", "256KiB", "--name", name, c.src)
	if code != 0 {
		t.Fatalf("publish exit %d: %s", code, e)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	c.id = lines[len(lines)-1]
	return c
}

// writeSeeded writes size bytes from a PCG seeded with seed and returns
// their SHA-256.
func writeSeeded(path string, size int64, seed uint64) ([32]byte, error) {
	f, err := os.Create(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(seed, 0x5ea1_f00d))
	h := sha256.New()
	w := io.MultiWriter(f, h)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		for i := 0; i < len(buf); i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
		}
		n := min(left, int64(len(buf)))
		if _, err := w.Write(buf[:n]); err != nil {
			return [32]byte{}, err
		}
		left -= n
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, f.Close()
}

// sourceRange reads bytes [from, from+n) of a published file's source.
func (c *fxContent) sourceRange(t *testing.T, path string, from, n int64) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(c.src, filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, from); err != nil {
		t.Fatal(err)
	}
	return b
}

// chunkHash is the SHA-256 of chunk k of a published file's source.
func (c *fxContent) chunkHash(t *testing.T, path string, k int64) core.Hash {
	t.Helper()
	size := min(fxChunk, c.files[path].size-k*fxChunk)
	return core.Hash(sha256.Sum256(c.sourceRange(t, path, k*fxChunk, size)))
}

// manifestBytes is the size of the content's signed manifest in the layout.
func (r *fxRig) manifestBytes(c *fxContent) int64 {
	st, err := os.Stat(filepath.Join(r.layout, "manifests", c.id))
	if err != nil {
		r.t.Fatal(err)
	}
	return st.Size()
}

// bodyBytes is the size of the origin's answer for path (its error body
// when it has none).
func (r *fxRig) bodyBytes(path string) int64 {
	resp, err := http.Get(r.originURL + "/" + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

// fxProc is a daemon started for a test.
type fxProc struct {
	name string
	cmd  *exec.Cmd
	log  *fxLog
	done chan struct{} // closed once the process has exited
	err  error         // its exit status; set before done closes
}

// fxLog keeps a process's stderr (the first 16 MiB) for the failure report.
type fxLog struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (l *fxLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 16<<20 {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *fxLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// tail is the last n bytes of the log, from a line start.
func (l *fxLog) tail(n int) string {
	s := l.String()
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "…\n" + s
}

// start runs bin with args; the test's cleanup stops it (SIGTERM) and, if
// the test failed, prints the tail of its log.
func (r *fxRig) start(name string, args ...string) *fxProc {
	t := r.t
	t.Helper()
	p := &fxProc{name: name, cmd: exec.Command(r.bin, args...), log: &fxLog{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("---- %s (%s) log:\n%s", name, strings.Join(args, " "), p.log.tail(24<<10))
		}
	})
	return p
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 20 s, which
// fails the test: every daemon must stop on SIGTERM).
func (p *fxProc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("%s after SIGTERM: %v", p.name, p.err)
		}
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
	}
}

// waitFor polls cond until it holds or the deadline passes (then fails the
// test with cond's last word on why not).
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not reached within %v: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// up waits until url answers 200.
func (r *fxRig) up(name, url string, p *fxProc) {
	r.t.Helper()
	waitFor(r.t, name+" up", fxDeadline, func() (bool, string) {
		select {
		case <-p.done:
			r.t.Fatalf("%s exited at start: %v\n%s", name, p.err, p.log.tail(8<<10))
		default:
		}
		resp, err := fxClient.Get(url)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
}

func (r *fxRig) startOrigin() {
	addr := freePort(r.t)
	r.originURL = "http://" + addr
	r.origin = r.start("origin", "origin", "--dir", r.layout, "--listen", addr)
	r.up("origin", r.originURL+"/metrics", r.origin)
}

// startTracker starts a tracker that has peers re-announce every second,
// so its view follows theirs closely.
func (r *fxRig) startTracker() {
	addr := freePort(r.t)
	r.trackerURL = "http://" + addr
	p := r.start("tracker", "tracker", "--listen", addr, "--interval", "1s", "--admin-token", e2eAdminToken)
	r.up("tracker", r.trackerURL+"/metrics", p)
}

// fxPeer is a running `shoal peer`.
type fxPeer struct {
	*fxProc
	gw    string // http://host:port of its gateway
	cache string
	args  []string
}

// startPeer starts a peer with a fresh cache (with the rig's tracker, if
// one runs) and waits for its gateway.
func (r *fxRig) startPeer(name string, extra ...string) *fxPeer {
	r.nPeers++
	return r.startPeerCache(name, filepath.Join(r.dir, fmt.Sprintf("cache-%d-%s", r.nPeers, name)), extra...)
}

// startPeerCache starts a peer on cache (which may hold a previous run's
// chunks).
func (r *fxRig) startPeerCache(name, cache string, extra ...string) *fxPeer {
	r.t.Helper()
	gw := freePort(r.t)
	args := []string{"peer", "--cache", cache, "--gateway", gw, "--listen", "/ip4/127.0.0.1/tcp/0",
		"--origin", r.originURL, "--trust", r.pub}
	if r.trackerURL != "" {
		args = append(args, "--tracker", r.trackerURL)
	}
	args = append(args, extra...)
	p := &fxPeer{fxProc: r.start(name, args...), gw: "http://" + gw, cache: cache, args: extra}
	r.up(name, p.gw+"/api/status", p.fxProc)
	return p
}

func (p *fxPeer) status(t *testing.T) agent.Status {
	t.Helper()
	var st agent.Status
	getJSON(t, p.gw+"/api/status", &st)
	return st
}

// swarm is the peer's status of content id (ok false if it has not joined).
func (p *fxPeer) swarm(t *testing.T, id string) (agent.SwarmStatus, bool) {
	t.Helper()
	for _, s := range p.status(t).Swarms {
		if s.Content == id {
			return s, true
		}
	}
	return agent.SwarmStatus{}, false
}

// waitComplete waits until the peer holds every chunk of id.
func (p *fxPeer) waitComplete(t *testing.T, id string) {
	t.Helper()
	waitFor(t, p.name+" complete", fxDeadline, func() (bool, string) {
		s, ok := p.swarm(t, id)
		return ok && s.Complete, fmt.Sprintf("%+v", s)
	})
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := fxClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// fxOrigin is a reading of the origin's counters.
type fxOrigin struct{ requests, bytes, inFlight int64 }

func (a fxOrigin) sub(b fxOrigin) fxOrigin {
	return fxOrigin{a.requests - b.requests, a.bytes - b.bytes, a.inFlight}
}

// originCounters reads shoal_origin_requests_total (every method and code),
// shoal_origin_response_bytes_total and shoal_origin_in_flight_requests.
// /metrics itself is not counted by the origin.
func (r *fxRig) originCounters() fxOrigin {
	t := r.t
	t.Helper()
	resp, err := fxClient.Get(r.originURL + "/metrics")
	if err != nil {
		t.Fatalf("origin metrics: %v", err)
	}
	defer resp.Body.Close()
	var o fxOrigin
	seen := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			_, val, _ = strings.Cut(line, "} ")
		}
		var dst *int64
		switch name {
		case "shoal_origin_requests_total":
			dst = &o.requests
		case "shoal_origin_response_bytes_total":
			dst = &o.bytes
			seen++
		case "shoal_origin_in_flight_requests":
			dst = &o.inFlight
			seen++
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			t.Fatalf("origin metrics: %q: %v", line, err)
		}
		*dst += int64(v)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("origin metrics: %v", err)
	}
	if seen != 2 {
		t.Fatalf("origin metrics: shoal_origin_response_bytes_total or shoal_origin_in_flight_requests missing")
	}
	return o
}

// settle waits until the origin is idle: nothing in flight and its counters
// unchanged for a second. It only ever lets a late background fetch show up
// in the figures, so waiting longer can make a test stricter, never laxer.
func (r *fxRig) settle() fxOrigin {
	r.t.Helper()
	var last fxOrigin
	var since time.Time
	waitFor(r.t, "origin idle", fxDeadline, func() (bool, string) {
		o := r.originCounters()
		if o != last || o.inFlight != 0 {
			last, since = o, time.Now()
			return false, fmt.Sprintf("%+v", o)
		}
		return time.Since(since) >= time.Second, fmt.Sprintf("%+v", o)
	})
	return last
}

// fxResponse is a gateway response read to its end: the body's length and
// SHA-256 (never held in memory), or the body itself when small.
type fxResponse struct {
	status  int
	header  http.Header
	n       int64
	sum     [32]byte
	body    []byte // the first 4 MiB
	readErr error  // the body ended in an error (a cut connection)
	err     error  // no response at all (nothing within the deadline)
}

func fxDo(t *testing.T, method, url string, hdr ...string) fxResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fxDeadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := fxClient.Do(req)
	if err != nil {
		return fxResponse{err: fmt.Errorf("%s %s: %w", method, url, err)}
	}
	defer resp.Body.Close()
	h := sha256.New()
	var small bytes.Buffer
	n, rerr := io.Copy(io.MultiWriter(h, &capped{&small, 4 << 20}), resp.Body)
	r := fxResponse{status: resp.StatusCode, header: resp.Header, n: n, body: small.Bytes(), readErr: rerr}
	h.Sum(r.sum[:0])
	return r
}

// capped writes the first max bytes to w and drops the rest.
type capped struct {
	w   io.Writer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max; room > 0 {
		k := min(room, len(p))
		c.w.Write(p[:k])
		c.max -= k
	}
	return len(p), nil
}

// wantWhole checks a 200 carrying exactly the source file.
func wantWhole(t *testing.T, what string, r fxResponse, src fxSource) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v", what, r.err)
	}
	if r.status != 200 {
		t.Fatalf("%s: status %d, want 200: %q", what, r.status, r.body)
	}
	if r.header.Get("Content-Length") != strconv.FormatInt(src.size, 10) {
		t.Errorf("%s: Content-Length %q, want %d", what, r.header.Get("Content-Length"), src.size)
	}
	if r.readErr != nil || r.n != src.size {
		t.Fatalf("%s: body ended after %d of %d bytes: %v", what, r.n, src.size, r.readErr)
	}
	if r.sum != src.sum {
		t.Fatalf("%s: body of %d bytes differs from the source (sha256 %x, want %x)", what, r.n, r.sum[:8], src.sum[:8])
	}
}

func issue8(t *testing.T, what string, o fxOrigin, extra string) {
	t.Helper()
	t.Logf("FIGURE %s: origin_requests=%d origin_bytes=%d%s", what, o.requests, o.bytes, extra)
}

// TestPeerHeadFetchesNoChunks: a HEAD through a fresh peer's gateway costs
// the origin the signed manifest and nothing else: no hash layer, no chunk.
func TestPeerHeadFetchesNoChunks(t *testing.T) {
	r := newFxRig(t)
	c := r.publish("head", fxFile{"big.bin", 64 << 20, 8001})
	r.startOrigin()
	p := r.startPeer("peer")
	mBytes := r.manifestBytes(c)

	before := r.settle()
	resp := fxDo(t, http.MethodHead, p.gw+"/c/"+c.id+"/big.bin")
	if resp.err != nil {
		t.Fatal(resp.err)
	}
	if resp.status != 200 {
		t.Fatalf("HEAD: status %d, want 200", resp.status)
	}
	if got := resp.header.Get("Content-Length"); got != "67108864" {
		t.Errorf("HEAD: Content-Length %q, want 67108864", got)
	}
	if resp.n != 0 {
		t.Errorf("HEAD: %d body bytes", resp.n)
	}
	d := r.settle().sub(before)
	issue8(t, "head", d, fmt.Sprintf(" (manifest %d bytes)", mBytes))
	if d.bytes > mBytes || d.requests > 1 {
		t.Errorf("HEAD cost the origin %d requests and %d bytes; want at most the manifest: 1 request, %d bytes "+
			"(the hash layer is %d bytes, a chunk %d)", d.requests, d.bytes, mBytes, layerBytes(64<<20), fxChunk)
	}
	if s, ok := p.swarm(t, c.id); !ok || s.Have != 0 || s.BytesFromOrigin != 0 || s.BytesFromPeers != 0 {
		t.Errorf("after HEAD the peer holds chunks: %+v (joined %v)", s, ok)
	}
}

// TestPeerRangeFetchesOnlyTheWindow: a Range request costs the origin the
// chunks it covers plus at most the read-ahead window, and the metadata
// (manifest, that file's hash layer), not the file.
func TestPeerRangeFetchesOnlyTheWindow(t *testing.T) {
	const size = 64 << 20
	r := newFxRig(t)
	c := r.publish("range", fxFile{"big.bin", size, 8002})
	r.startOrigin()
	p := r.startPeer("peer")
	meta := r.manifestBytes(c) + layerBytes(size)
	url := p.gw + "/c/" + c.id + "/big.bin"

	before := r.settle()
	resp := fxDo(t, http.MethodGet, url, "Range", "bytes=1000-1099")
	if resp.err != nil {
		t.Fatal(resp.err)
	}
	if resp.status != http.StatusPartialContent {
		t.Fatalf("Range 1000-1099: status %d, want 206: %q", resp.status, resp.body)
	}
	if got, want := resp.header.Get("Content-Range"), "bytes 1000-1099/67108864"; got != want {
		t.Errorf("Content-Range %q, want %q", got, want)
	}
	if resp.readErr != nil || !bytes.Equal(resp.body, c.sourceRange(t, "big.bin", 1000, 100)) {
		t.Fatalf("Range 1000-1099: got %d bytes (%v), want the source's 100", len(resp.body), resp.readErr)
	}
	d := r.settle().sub(before)
	issue8(t, "range 1000-1099", d, fmt.Sprintf(" (metadata %d bytes)", meta))
	// The chunk holding the range, the window past it, the metadata.
	if limit := int64(fxChunk + fxReadAhead + meta); d.bytes > limit {
		t.Errorf("a 100-byte range cost the origin %d bytes (%d requests); want at most %d "+
			"(its chunk %d + read-ahead %d + metadata %d)", d.bytes, d.requests, limit, fxChunk, fxReadAhead, meta)
	}

	// An open-ended range over the last MiB.
	const from = size - 1<<20
	before = r.settle()
	resp = fxDo(t, http.MethodGet, url, "Range", fmt.Sprintf("bytes=%d-", from))
	if resp.err != nil {
		t.Fatal(resp.err)
	}
	if resp.status != http.StatusPartialContent {
		t.Fatalf("Range %d-: status %d, want 206: %q", from, resp.status, resp.body)
	}
	if got, want := resp.header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", from, size-1, size); got != want {
		t.Errorf("Content-Range %q, want %q", got, want)
	}
	if resp.readErr != nil || !bytes.Equal(resp.body, c.sourceRange(t, "big.bin", from, 1<<20)) {
		t.Fatalf("Range %d-: got %d bytes (%v), want the source's last 1 MiB", from, len(resp.body), resp.readErr)
	}
	d = r.settle().sub(before)
	issue8(t, "range last 1MiB", d, "")
	if limit := int64(1<<20 + fxReadAhead + meta); d.bytes > limit {
		t.Errorf("the last 1 MiB cost the origin %d bytes (%d requests); want at most %d (1 MiB + read-ahead %d + metadata %d)",
			d.bytes, d.requests, limit, fxReadAhead, meta)
	}
}

// TestGetOneFileOfManyFetchesThatFile: `shoal get ID/path` costs the origin
// that file, the manifest and that file's hash layer — alone and as a
// swarm member (--tracker).
func TestGetOneFileOfManyFetchesThatFile(t *testing.T) {
	const size = 8 << 20
	r := newFxRig(t)
	var files []fxFile
	for i := range 8 {
		files = append(files, fxFile{fmt.Sprintf("f%d.bin", i), size, 8100 + uint64(i)})
	}
	c := r.publish("eight", files...)
	r.startOrigin()
	r.startTracker()
	// A get also asks for the publisher's revocation list (absent here,
	// so the origin's 404 body).
	limit := size + r.manifestBytes(c) + layerBytes(size) + r.bodyBytes(layout.RevocationPath(r.pub))

	for _, tc := range []struct {
		name, file string
		swarm      bool
	}{
		{"origin", "f3.bin", false},
		{"swarm", "f5.bin", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(r.dir, "got-"+tc.name)
			args := []string{"get", "--quiet", "--cache", filepath.Join(r.dir, "getcache-"+tc.name),
				"--origin", r.originURL, "--trust", r.pub, "-o", out}
			if tc.swarm {
				args = append(args, "--tracker", r.trackerURL, "--listen", "/ip4/127.0.0.1/tcp/0")
			}
			args = append(args, c.id+"/"+tc.file)
			before := r.settle()
			if o, e, code := runBin(t, r.bin, args...); code != 0 {
				t.Fatalf("get exit %d:\n%s%s", code, o, e)
			}
			d := r.settle().sub(before)
			issue8(t, "get one file of 8 ("+tc.name+")", d, fmt.Sprintf(" (file %d bytes)", size))
			if d.bytes > limit {
				t.Errorf("get of one 8 MiB file cost the origin %d bytes (%d requests); want at most %d (file + manifest + its hash layer + the revocation list's answer)",
					d.bytes, d.requests, limit)
			}
			sum, n := fileSum(t, out)
			want := c.files[tc.file].sum
			if n != size || sum != want {
				t.Errorf("output: %d bytes, sha256 %x; want the source's %d bytes, %x", n, sum[:8], size, want[:8])
			}
		})
	}
}

func fileSum(t *testing.T, path string) ([32]byte, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, n
}

// TestQuotaPeerServesFileManyTimesItsQuota: a peer whose cache holds a
// quarter of a file serves it whole, byte for byte, again and again; its
// have-set never claims more than the cache can hold, and the tracker
// never takes it for a seed.
func TestQuotaPeerServesFileManyTimesItsQuota(t *testing.T) {
	const (
		size  = 96 << 20
		quota = 24 << 20
	)
	r := newFxRig(t)
	c := r.publish("quota", fxFile{"movie.bin", size, 8003})
	src := c.files["movie.bin"]
	r.startOrigin()
	r.startTracker()

	seed := r.startPeer("seed")
	before := r.settle()
	wantWhole(t, "seed GET", fxDo(t, http.MethodGet, seed.gw+"/c/"+c.id+"/movie.bin"), src)
	seed.waitComplete(t, c.id)
	issue8(t, "quota: seed's whole-file GET", r.settle().sub(before), "")

	small := r.startPeer("quota", "--cache-size", "24MiB")
	before = r.originCounters()
	for i := range 3 {
		wantWhole(t, fmt.Sprintf("GET %d through the 24 MiB peer", i+1),
			fxDo(t, http.MethodGet, small.gw+"/c/"+c.id+"/movie.bin"), src)
	}
	qs, ok := small.swarm(t, c.id)
	if !ok {
		t.Fatal("the quota peer lists no swarm for the content it served")
	}
	issue8(t, "quota: 3 GETs through the 24MiB peer", r.originCounters().sub(before),
		fmt.Sprintf(" (peer: %d bytes from peers, %d from origin)", qs.BytesFromPeers, qs.BytesFromOrigin))

	onDisk := countChunkFiles(t, small.cache)
	t.Logf("quota peer: have %d chunks (%d bytes), %d chunk files on disk, quota %d", qs.Have, int64(qs.Have)*fxChunk, onDisk, quota)
	if int64(qs.Have)*fxChunk > quota {
		t.Errorf("quota peer claims %d chunks (%d bytes), more than its %d-byte quota can hold", qs.Have, int64(qs.Have)*fxChunk, quota)
	}
	if qs.Have > onDisk {
		t.Errorf("quota peer claims %d chunks but holds %d on disk", qs.Have, onDisk)
	}
	if int64(onDisk)*fxChunk > quota {
		t.Errorf("quota peer holds %d chunks (%d bytes) on disk, over its %d-byte quota", onDisk, int64(onDisk)*fxChunk, quota)
	}
	if qs.Complete {
		t.Errorf("quota peer says it is complete: %+v", qs)
	}

	// Once the tracker has both peers' announces from after the transfers
	// (the downloads they report add up), it must list one seed.
	ss, _ := seed.swarm(t, c.id)
	qs, _ = small.swarm(t, c.id)
	reported := ss.BytesFromPeers + ss.BytesFromOrigin + qs.BytesFromPeers + qs.BytesFromOrigin
	var sw tracker.SwarmStats
	waitFor(t, "tracker has both peers' latest announces", fxDeadline, func() (bool, string) {
		var resp tracker.SwarmsResponse
		getAdminJSON(t, r.trackerURL+"/api/swarms", &resp)
		for _, s := range resp.Swarms {
			if s.Content.String() == c.id {
				sw = s
				return s.Peers == 2 && s.Downloaded >= reported, fmt.Sprintf("%+v, want downloaded >= %d", s, reported)
			}
		}
		return false, fmt.Sprintf("no swarm %s in %+v", c.id, resp.Swarms)
	})
	t.Logf("tracker: %+v", sw)
	if sw.Seeds != 1 {
		t.Errorf("tracker lists %d seeds (%+v); want 1: the seed, not the 24 MiB peer", sw.Seeds, sw)
	}
}

// countChunkFiles counts the chunk files under a cache's chunks/<hh>/.
func countChunkFiles(t *testing.T, cache string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(cache, "chunks", "[0-9a-f][0-9a-f]", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range m {
		if _, err := core.ParseHash(filepath.Base(p)); err == nil {
			n++
		}
	}
	return n
}

// TestNewcomerCompletesFromSeedWithOriginDown: with the origin gone, a
// peer with an empty cache gets the manifest and the hash layer from a seed
// (/shoal/meta/1) and the chunks from it.
func TestNewcomerCompletesFromSeedWithOriginDown(t *testing.T) {
	r := newFxRig(t)
	c := r.publish("down", fxFile{"clip.bin", 8 << 20, 8004})
	src := c.files["clip.bin"]
	r.startOrigin()
	r.startTracker()

	seed := r.startPeer("seed")
	before := r.settle()
	wantWhole(t, "seed GET", fxDo(t, http.MethodGet, seed.gw+"/c/"+c.id+"/clip.bin"), src)
	seed.waitComplete(t, c.id)
	issue8(t, "newcomer: seed's GET (origin up)", r.settle().sub(before), "")

	r.origin.stop(t)
	if resp, err := fxClient.Get(r.originURL + "/metrics"); err == nil {
		resp.Body.Close()
		t.Fatal("the origin still answers after SIGTERM")
	}

	newcomer := r.startPeer("newcomer")
	resp := fxDo(t, http.MethodGet, newcomer.gw+"/c/"+c.id+"/clip.bin")
	if resp.err != nil || resp.status != 200 {
		ns, _ := newcomer.swarm(t, c.id)
		t.Logf("newcomer's swarm after the failed GET: %+v", ns)
	}
	wantWhole(t, "newcomer GET, origin down", resp, src)
	ns, _ := newcomer.swarm(t, c.id)
	issue8(t, "newcomer with origin down", fxOrigin{}, fmt.Sprintf(" (origin stopped; newcomer: %d bytes from peers, %d from origin)",
		ns.BytesFromPeers, ns.BytesFromOrigin))
	if ns.BytesFromPeers < src.size {
		t.Errorf("newcomer got %d bytes from peers, want the whole %d", ns.BytesFromPeers, src.size)
	}
}

// TestCorruptCachedChunkIsFetchedAgain: a chunk damaged on disk — while
// the peer is stopped (the cache scrub after the start drops it) or while it runs
// (verify-on-read drops it) — is fetched again, and the response is the
// file byte for byte, never short.
func TestCorruptCachedChunkIsFetchedAgain(t *testing.T) {
	r := newFxRig(t)
	c := r.publish("corrupt", fxFile{"doc.bin", 4 << 20, 8005})
	src := c.files["doc.bin"]
	r.startOrigin()
	url := "/c/" + c.id + "/doc.bin"

	p := r.startPeer("peer")
	before := r.settle()
	wantWhole(t, "first GET", fxDo(t, http.MethodGet, p.gw+url), src)
	issue8(t, "corrupt: first GET", r.settle().sub(before), "")
	p.stop(t)

	// Damaged while stopped: the background scrub, which starts with the
	// chunks not verified since the start, removes it.
	h5 := c.chunkHash(t, "doc.bin", 5)
	flipByte(t, p.cache, h5, 1234)
	p = r.startPeerCache("peer-restarted", p.cache)
	waitFor(t, "damaged chunk removed after the restart", fxDeadline, func() (bool, string) {
		_, err := os.Stat(chunkFile(p.cache, h5))
		return err != nil, fmt.Sprintf("chunk %s, damaged while the peer was stopped, is still in the cache", h5.Short())
	})
	before = r.settle()
	wantWhole(t, "GET after a restart on a damaged cache", fxDo(t, http.MethodGet, p.gw+url), src)
	d := r.settle().sub(before)
	issue8(t, "corrupt at rest, after restart", d, "")
	if d.bytes < fxChunk {
		t.Errorf("the damaged chunk was not fetched again: the origin served %d bytes", d.bytes)
	}

	// Damaged while running: verify-on-read finds it.
	h9 := c.chunkHash(t, "doc.bin", 9)
	flipByte(t, p.cache, h9, 4321)
	before = r.settle()
	wantWhole(t, "GET after a chunk was damaged under the running peer", fxDo(t, http.MethodGet, p.gw+url), src)
	d = r.settle().sub(before)
	issue8(t, "corrupt while running", d, "")
	if d.bytes < fxChunk {
		t.Errorf("the damaged chunk was not fetched again: the origin served %d bytes", d.bytes)
	}
	if b, err := os.ReadFile(chunkFile(p.cache, h9)); err == nil && core.Hash(sha256.Sum256(b)) != h9 {
		t.Errorf("the damaged chunk %s is still in the cache, damaged", h9.Short())
	}
}

func chunkFile(cache string, h core.Hash) string {
	s := hex.EncodeToString(h[:])
	return filepath.Join(cache, "chunks", s[:2], s)
}

// flipByte inverts one byte of a cached chunk file in place.
func flipByte(t *testing.T, cache string, h core.Hash, off int64) {
	t.Helper()
	p := chunkFile(cache, h)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatalf("chunk %s not in the cache: %v", h.Short(), err)
	}
	os.Chmod(p, st.Mode().Perm()|0o200)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
