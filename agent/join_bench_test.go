package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// BenchmarkJoinFirstPlaylistByte3000 is a viewer's first request to a peer
// that has never seen the content, a VOD of 3,000 segments: time to the
// first byte of the master playlist through the gateway (join, manifest,
// playlist chunk), and the origin requests that takes. Each iteration is a
// fresh peer with an empty cache; only the request is timed.
func BenchmarkJoinFirstPlaylistByte3000(b *testing.B) {
	f := newOnDemandFixture(b, func(dir string) string { return segmentedHLS(b, dir, 3000) })
	o := newOriginLog(b, f.layoutDir)
	caches := b.TempDir()
	var requests, n int
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		ctx, cancel := context.WithCancel(context.Background())
		dir, err := os.MkdirTemp(caches, "cache-")
		if err != nil {
			b.Fatal(err)
		}
		p := f.peer(b, ctx, o, dir)
		gw := httptest.NewServer(p.Gateway())
		// A request that touches no content opens the connection.
		if resp, err := http.Get(gw.URL + "/api/status"); err != nil {
			b.Fatal(err)
		} else {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		before := f.view(o).requests
		url := fmt.Sprintf("%s/c/%s/%s", gw.URL, f.id, f.m.Media.Entry)
		b.StartTimer()

		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		var first [1]byte
		if _, err := io.ReadFull(resp.Body, first[:]); err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %s, %v", f.m.Media.Entry, resp.Status, err)
		}

		b.StopTimer()
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		requests += f.view(o).requests - before
		n++
		gw.Close()
		cancel()
		p.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(requests)/float64(n), "origin-reqs/op")
}
