package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/origin"
	"github.com/shoal-cdn/shoal/publish"
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

// BenchmarkJoinFirstPlaylistBytePaged is BenchmarkJoinFirstPlaylistByte3000
// for a VOD whose 3,000 segments have two chunks each, so their roots are
// most of a version 1 manifest: the same content published as version 1
// and paged, time to the master playlist's first byte through a fresh
// peer's gateway, and the manifest bytes the origin sent.
func BenchmarkJoinFirstPlaylistBytePaged(b *testing.B) {
	src := filepath.Join(b.TempDir(), "media")
	segmentedHLSSized(b, src, 3000, testChunk+1)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{18}, 32))
	for _, v := range []struct {
		name    string
		version int
	}{{"v1", manifest.Version}, {"paged", manifest.VersionPaged}} {
		out := b.TempDir()
		res, err := publish.Publish(context.Background(), publish.Config{Key: key, Out: out, ChunkSize: testChunk, Paths: []string{src}, ManifestVersion: v.version})
		if err != nil {
			b.Fatal(err)
		}
		srv, err := origin.New(origin.Config{Dir: out})
		if err != nil {
			b.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		b.Cleanup(hs.Close)
		mem := netx.NewMemNetwork()
		b.Run(v.name, func(b *testing.B) {
			var n int
			var sent int64
			for b.Loop() {
				b.StopTimer()
				ctx, cancel := context.WithCancel(context.Background())
				h, err := mem.NewHost("")
				if err != nil {
					b.Fatal(err)
				}
				p, err := NewPeer(ctx, PeerConfig{CacheDir: b.TempDir(), Origin: hs.URL, Trust: manifest.NewKeySet(manifest.PublicOf(key)), Host: h})
				if err != nil {
					b.Fatal(err)
				}
				gw := httptest.NewServer(p.Gateway())
				if resp, err := http.Get(gw.URL + "/api/status"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				before := srv.BytesServed()
				b.StartTimer()
				resp, err := http.Get(fmt.Sprintf("%s/c/%s/%s", gw.URL, res.ID, res.Manifest.Media.Entry))
				if err != nil {
					b.Fatal(err)
				}
				var first [1]byte
				if _, err := io.ReadFull(resp.Body, first[:]); err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("GET master: %s, %v", resp.Status, err)
				}
				b.StopTimer()
				sent += srv.BytesServed() - before
				n++
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				gw.Close()
				cancel()
				p.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(sent)/float64(n), "origin-bytes/op")
		})
	}
}

// segmentedHLSSized writes a one-rendition HLS VOD of n segments of size
// bytes each (drawn from (n, k)) under dir.
func segmentedHLSSized(tb testing.TB, dir string, n, size int) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "v0"), 0o755); err != nil {
		tb.Fatal(err)
	}
	var pl strings.Builder
	pl.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n")
	b := make([]byte, size)
	for k := range n {
		name := fmt.Sprintf("seg%05d.ts", k)
		r := rand.New(rand.NewPCG(uint64(n), uint64(k)))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if err := os.WriteFile(filepath.Join(dir, "v0", name), b, 0o644); err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&pl, "#EXTINF:2.000,\n%s\n", name)
	}
	pl.WriteString("#EXT-X-ENDLIST\n")
	if err := os.WriteFile(filepath.Join(dir, "v0", "index.m3u8"), []byte(pl.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	master := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=16000,RESOLUTION=320x240\nv0/index.m3u8\n"
	if err := os.WriteFile(filepath.Join(dir, "master.m3u8"), []byte(master), 0o644); err != nil {
		tb.Fatal(err)
	}
}
