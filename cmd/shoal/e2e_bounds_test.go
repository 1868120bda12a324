//go:build e2e

// End-to-end tests of the gateway's bounds with real processes: what many
// readers that stop reading can make a `shoal peer` hold, and that it lets
// go of them. Each logs a line "FIGURE <case>: …" with its figures. Every
// wait polls with an overall deadline; no assertion depends on timing.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	bndChunkSize = "16MiB"   // --chunk-size of the content: the largest Shoal allows
	bndFileSize  = 96 << 20  // six chunks
	bndReaders   = 100       // concurrent readers that stop reading
	bndRSSLimit  = 256 << 20 // the peer's peak RSS must stay under this
	bndStall     = "3s"      // the peer's --gateway-stall-timeout here
)

// publishChunked publishes files as one content with the given --chunk-size.
func (r *fxRig) publishChunked(name, chunkSize string, files ...fxFile) *fxContent {
	t := r.t
	t.Helper()
	c := &fxContent{src: r.dir + "/src-" + name, files: map[string]fxSource{}}
	for _, f := range files {
		if err := os.MkdirAll(c.src, 0o755); err != nil {
			t.Fatal(err)
		}
		sum, err := writeSeeded(c.src+"/"+f.path, f.size, f.seed)
		if err != nil {
			t.Fatal(err)
		}
		c.files[f.path] = fxSource{f.size, sum}
	}
	out, e, code := runBin(t, r.bin, "publish", "--key", r.key, "--out", r.layout,
		"--chunk-size", chunkSize, "--name", name, c.src)
	if code != 0 {
		t.Fatalf("publish exit %d: %s", code, e)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	c.id = lines[len(lines)-1]
	return c
}

// procStatus reads a field in kB (VmHWM, VmRSS) of /proc/PID/status, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("peer process status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/status: %q: %v", pid, line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// stalledReader sends a GET for path on a raw connection, reads the
// headers and a few body bytes, and then reads no more.
func stalledReader(addr, path string) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	// A small receive buffer: the kernel on our side takes little of the
	// response, so the peer's writes block soon.
	conn.(*net.TCPConn).SetReadBuffer(256 << 10)
	conn.SetDeadline(time.Now().Add(fxDeadline))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 4<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("GET %s: first bytes: %w", path, err)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// gatewayGauge reads a gauge of the peer's /metrics (summing its series).
func gatewayGauge(t *testing.T, gw, name string) (float64, bool) {
	t.Helper()
	resp, err := fxClient.Get(gw + "/metrics")
	if err != nil {
		t.Fatalf("peer metrics: %v", err)
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("peer metrics: %q: %v", line, err)
		}
		sum += v
		found = true
	}
	return sum, found
}

// TestStalledReadersKeepPeerMemoryBounded: 100 clients that read a few
// bytes of a 16 MiB-chunk file and stop keep the peer's peak RSS under
// 256 MiB; once the stall timeout passes their responses are cut and
// released, and the peer still serves the whole file byte-identical.
func TestStalledReadersKeepPeerMemoryBounded(t *testing.T) {
	r := newFxRig(t)
	c := r.publishChunked("bounds", bndChunkSize, fxFile{"big.bin", bndFileSize, 9001})
	r.startOrigin()
	p := r.startPeer("peer", "--gateway-stall-timeout", bndStall, "--gateway-client-streams", strconv.Itoa(2*bndReaders))
	pid := p.cmd.Process.Pid
	addr := strings.TrimPrefix(p.gw, "http://")
	path := "/c/" + c.id + "/big.bin"

	conns := make([]net.Conn, bndReaders)
	errs := make([]error, bndReaders)
	var wg sync.WaitGroup
	for i := range bndReaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i], errs[i] = stalledReader(addr, path)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
	}
	atStall := procStatus(t, pid, "VmHWM")

	// The stall timeout cuts every stalled response and returns its
	// buffers to the pool.
	waitFor(t, "stalled responses released", fxDeadline, func() (bool, string) {
		n, ok := gatewayGauge(t, p.gw, "shoal_gateway_responses")
		b, _ := gatewayGauge(t, p.gw, "shoal_gateway_buffer_bytes")
		return ok && n == 0 && b == 0, fmt.Sprintf("shoal_gateway_responses %v (found %v), shoal_gateway_buffer_bytes %v", n, ok, b)
	})
	if n, _ := gatewayGauge(t, p.gw, "shoal_gateway_stalled_total"); n != bndReaders {
		t.Errorf("shoal_gateway_stalled_total %v, want %d: every stalled response cut by the stall timeout", n, bndReaders)
	}
	// Each stalled connection was closed by the peer: what is left of it
	// drains to an end well short of the file.
	for i, conn := range conns {
		conn.SetReadDeadline(time.Now().Add(fxDeadline))
		n, _ := io.Copy(io.Discard, conn)
		if n >= bndFileSize {
			t.Fatalf("reader %d: its response was not cut: %d more bytes after the stall", i, n)
		}
		conn.Close()
		conns[i] = nil
	}

	// A fresh reader gets the whole file.
	wantWhole(t, "full GET after the stall", fxDo(t, http.MethodGet, p.gw+path), c.files["big.bin"])
	peak := procStatus(t, pid, "VmHWM")
	t.Logf("FIGURE stalled-readers: readers=%d chunk=%s file=%d peak_rss_at_stall=%.1fMiB peak_rss=%.1fMiB",
		bndReaders, bndChunkSize, bndFileSize, float64(atStall)/(1<<20), float64(peak)/(1<<20))
	if peak >= bndRSSLimit {
		t.Errorf("peer peak RSS %.1f MiB with %d stalled readers of a %s-chunk file; want under %d MiB",
			float64(peak)/(1<<20), bndReaders, bndChunkSize, bndRSSLimit>>20)
	}
}
