package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
)

// startupFixture is a lone peer (no tracker, no other peer) in front of a
// logging origin, with a two-rendition HLS content whose first segment of
// rendition A has several chunks.
type startupFixture struct {
	f    *onDemandFixture
	o    *originLog
	p    *Peer
	gw   *httptest.Server
	v    viewer
	A    manifest.Rendition
	seg0 string   // A's first segment
	ch0  []string // its chunks' layout paths, in order
}

func newStartupFixture(t *testing.T) *startupFixture {
	t.Helper()
	f := newOnDemandFixture(t, func(dir string) string { return twoRenditionHLS(t, dir) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	o := newOriginLog(t, f.layoutDir)
	p := f.peer(t, ctx, o, t.TempDir())
	t.Cleanup(func() { p.Close() })
	gw := httptest.NewServer(p.Gateway())
	t.Cleanup(gw.Close)
	sf := &startupFixture{f: f, o: o, p: p, gw: gw, v: viewer{t: t, base: fmt.Sprintf("%s/c/%s/", gw.URL, f.id), src: f.src}}
	sf.A = f.m.Media.Renditions[0]
	sf.seg0 = sf.A.Segments[0].Path
	for _, file := range f.m.Files {
		if file.Path != sf.seg0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(f.layoutDir, filepath.FromSlash(layout.HashLayerPath(file.Root))))
		if err != nil {
			t.Fatal(err)
		}
		l, err := manifest.ParseHashLayer(file, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range l {
			sf.ch0 = append(sf.ch0, layout.ChunkPath(h))
		}
	}
	if len(sf.ch0) < 3 {
		t.Fatalf("%s has %d chunks, want at least 3", sf.seg0, len(sf.ch0))
	}
	return sf
}

// requestSegment asks the gateway for path as the fixture's viewer and
// returns the response once its headers are in.
func (sf *startupFixture) requestSegment(t *testing.T, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", sf.v.base+path, nil)
	req.Header.Set(PlaybackHeader, "viewer")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %.200s", path, resp.Status, b)
	}
	return resp
}

// TestStartupSegmentStreamsAsChunksArrive: a start-up segment's verified
// chunks go to the player while the rest of the segment is still on its
// way from the origin, instead of after the whole segment is held.
func TestStartupSegmentStreamsAsChunksArrive(t *testing.T) {
	sf := newStartupFixture(t)
	sf.v.get(sf.f.m.Media.Entry)
	sf.v.get(sf.A.Playlist)
	last := sf.ch0[len(sf.ch0)-1]
	sf.o.hold(map[string]bool{last: true})

	want, err := os.ReadFile(filepath.Join(sf.f.src, filepath.FromSlash(sf.seg0)))
	if err != nil {
		t.Fatal(err)
	}
	// The headers and the first chunk's bytes arrive while the last
	// chunk's origin request is still held: the gateway did not wait for
	// the whole segment.
	first := make([]byte, testChunk)
	type answer struct {
		resp *http.Response
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", sf.v.base+sf.seg0, nil)
		req.Header.Set(PlaybackHeader, "viewer")
		resp, err := http.DefaultClient.Do(req)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", sf.seg0, resp.Status)
		}
		if err == nil {
			_, err = io.ReadFull(resp.Body, first)
		}
		got <- answer{resp, err}
	}()
	var resp *http.Response
	select {
	case a := <-got:
		if a.resp != nil {
			t.Cleanup(func() { a.resp.Body.Close() })
		}
		if a.err != nil {
			t.Fatal(a.err)
		}
		resp = a.resp
	case <-time.After(time.Minute):
		t.Fatalf("no byte of %s reached the player in a minute while its last chunk was held at the origin (%d requests waiting)", sf.seg0, sf.o.waitingAtGate())
	}
	// The last chunk's request is held at the gate, or not sent yet (the
	// lane may ask for it after the first chunk is served): either way the
	// first bytes came before the segment was whole.
	if n := sf.o.waitingAtGate(); n > 1 {
		t.Fatalf("%d origin requests held at the gate when the first bytes arrived, want at most the last chunk's 1", n)
	}
	if string(first) != string(want[:testChunk]) {
		t.Fatal("the first chunk's bytes differ from the published segment")
	}
	sf.o.release()
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(append(first, rest...)) != string(want) {
		t.Fatalf("%s: %d bytes differ from the %d published", sf.seg0, len(first)+len(rest), len(want))
	}
	// Each chunk came from the origin once.
	vw := sf.f.view(sf.o)
	for _, c := range sf.ch0 {
		if vw.reqs[c] != 1 {
			t.Errorf("chunk %s of %s requested %d times from the origin", c, sf.seg0, vw.reqs[c])
		}
	}
}

// TestStartupSegmentFailureCutsTheConnection: once a start-up segment's
// headers are out, a chunk the origin then fails to deliver cuts the
// connection; the player never sees a clean, short body.
func TestStartupSegmentFailureCutsTheConnection(t *testing.T) {
	sf := newStartupFixture(t)
	sf.v.get(sf.f.m.Media.Entry)
	sf.v.get(sf.A.Playlist)
	last := sf.ch0[len(sf.ch0)-1]
	sf.o.hold(map[string]bool{last: true})

	resp := sf.requestSegment(t, sf.seg0)
	waitFor(t, "the last chunk's origin request held", func() bool { return sf.o.waitingAtGate() == 1 })
	// The held request now finds nothing: the origin answers 404.
	if err := os.Remove(filepath.Join(sf.f.layoutDir, filepath.FromSlash(last))); err != nil {
		t.Fatal(err)
	}
	sf.o.release()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("a segment whose last chunk the origin lost ended cleanly after %d of %d bytes", len(body), resp.ContentLength)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("body ended with %v", err)
	}
	if int64(len(body)) >= resp.ContentLength {
		t.Fatalf("%d bytes of %d before the cut", len(body), resp.ContentLength)
	}
	// Asking again fails again (a 502 or another cut), and the gateway
	// still serves the rest.
	req, _ := http.NewRequest("GET", sf.v.base+sf.seg0, nil)
	resp2, err := http.DefaultClient.Do(req)
	if err == nil {
		b, rerr := io.ReadAll(resp2.Body)
		resp2.Body.Close()
		if resp2.StatusCode == http.StatusOK && rerr == nil {
			t.Fatalf("asking again: %s with %d bytes, though the origin lost a chunk", resp2.Status, len(b))
		}
	}
	sf.v.get(sf.A.Playlist)
}

// TestStartupOriginRequests: a viewer's start-up (manifest, both playlists,
// two segments) costs the origin each object once, and nothing of the
// rendition not played.
func TestStartupOriginRequests(t *testing.T) {
	sf := newStartupFixture(t)
	m := sf.f.m
	sf.v.get(m.Media.Entry)
	sf.v.get(sf.A.Playlist)
	sf.v.get(sf.A.Segments[0].Path)
	sf.v.get(sf.A.Segments[1].Path)
	vw := sf.f.view(sf.o)
	if vw.manifests != 1 || len(vw.unknown) > 0 {
		t.Fatalf("manifest requests %d, requests outside the content %v", vw.manifests, vw.unknown)
	}
	if r := vw.repeats(sf.f); len(r) > 0 {
		t.Fatalf("chunks requested more than once: %v", r)
	}
	for file, n := range vw.layerReqs {
		if n > 1 {
			t.Errorf("hash layer of %s requested %d times", file, n)
		}
	}
	for _, k := range []int{0, 1} {
		file := sf.A.Segments[k].Path
		var chunks int64
		for _, mf := range m.Files {
			if mf.Path == file {
				chunks = mf.Chunks
			}
		}
		if int64(len(vw.chunks[file])) != chunks || int64(vw.chunkReqs[file]) != chunks {
			t.Errorf("%s: %d of its %d chunks in %d requests", file, len(vw.chunks[file]), chunks, vw.chunkReqs[file])
		}
	}
	B := m.Media.Renditions[1]
	for _, s := range B.Segments {
		if vw.chunkReqs[s.Path] > 0 || vw.layerReqs[s.Path] > 0 {
			t.Errorf("start-up of rendition %s fetched %s of rendition %s", sf.A.ID, s.Path, B.ID)
		}
	}
	t.Logf("start-up: %d origin requests", vw.requests)
}

// TestStartupHoldsPeerDials: a session joined for a player's playlist holds
// its dials to the peers discovery finds until the playback's start-up
// segments are sent; one joined for a plain file does not.
func TestStartupHoldsPeerDials(t *testing.T) {
	sf := newStartupFixture(t)
	sf.p.startupHold = time.Hour // released by the segments, never by the bound
	m := sf.f.m
	sf.v.get(m.Media.Entry)
	j := sf.p.joinedOf(sf.f.id)
	if j == nil || j.dialHold == nil {
		t.Fatal("a join for the master playlist holds no dials")
	}
	held := func() bool {
		select {
		case <-j.dialHold:
			return false
		default:
			return true
		}
	}
	sf.v.get(sf.A.Playlist)
	sf.v.get(sf.A.Segments[0].Path)
	if !held() {
		t.Fatal("dials released before the last start-up segment was sent")
	}
	sf.v.get(sf.A.Segments[1].Path)
	// The handler releases the dials once the response is sent, which
	// can be just after the player has read its last byte.
	select {
	case <-j.dialHold:
	case <-time.After(30 * time.Second): // a hang guard, not a measurement
		t.Fatal("dials still held after the start-up segments were sent")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if !j.dialsReleased(ctx) {
		t.Fatal("dialsReleased = false once released")
	}

	// A plain file's join (the init of the content by a non-playlist
	// path) holds nothing.
	g := newStartupFixture(t)
	g.v.get(g.A.Segments[0].Path)
	if j := g.p.joinedOf(g.f.id); j == nil || j.dialHold != nil {
		t.Fatalf("a join for a segment holds dials: %v", j)
	}
}
