package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media/mediatest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/origin"
	"github.com/shoal-cdn/shoal/publish"
	"github.com/shoal-cdn/shoal/swarm"
)

// onDemandFixture is a media content published behind real origins that
// log every request, and lone peers (in-memory hosts, no tracker), so that
// everything a peer fetches shows at its origin.
type onDemandFixture struct {
	*fixture
	mem *netx.MemNetwork
	// owner maps the layout path of every chunk and hash layer to the
	// content files it belongs to: one, or several identical ones (both
	// renditions' playlists may be the same bytes).
	owner map[string][]string
	root  map[string]core.Hash // file path → Merkle root
}

func newOnDemandFixture(tb testing.TB, gen func(dir string) string) *onDemandFixture {
	tb.Helper()
	fx := &fixture{src: filepath.Join(tb.TempDir(), "media"), layoutDir: tb.TempDir()}
	gen(fx.src) // the media description names its entry playlist
	fx.key = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{17}, 32))
	res, err := publish.Publish(context.Background(), publish.Config{Key: fx.key, Out: fx.layoutDir, ChunkSize: testChunk, Paths: []string{fx.src}})
	if err != nil {
		tb.Fatal(err)
	}
	fx.id, fx.m = res.ID, res.Manifest
	if fx.m.Media == nil {
		tb.Fatal("publish did not recognise the media output")
	}
	f := &onDemandFixture{fixture: fx, mem: netx.NewMemNetwork(), owner: map[string][]string{}, root: map[string]core.Hash{}}
	ownerRoot := map[string]core.Hash{}
	own := func(p string, file manifest.File) {
		if r, ok := ownerRoot[p]; ok && r != file.Root {
			// Attribution would be ambiguous; the generators make every file's bytes distinct.
			tb.Fatalf("fixture: %s belongs to both %s and %s", p, f.owner[p][0], file.Path)
		}
		ownerRoot[p] = file.Root
		f.owner[p] = append(f.owner[p], file.Path)
	}
	for _, file := range fx.m.Files {
		f.root[file.Path] = file.Root
		switch {
		case file.Chunks == 1:
			own(layout.ChunkPath(file.Root), file)
		case file.Chunks > 1:
			b, err := os.ReadFile(filepath.Join(fx.layoutDir, filepath.FromSlash(layout.HashLayerPath(file.Root))))
			if err != nil {
				tb.Fatal(err)
			}
			l, err := manifest.ParseHashLayer(file, b)
			if err != nil {
				tb.Fatal(err)
			}
			own(layout.HashLayerPath(file.Root), file)
			for _, h := range l {
				own(layout.ChunkPath(h), file)
			}
		}
	}
	return f
}

// peer starts a peer with a fresh cache that fetches from o alone.
func (f *onDemandFixture) peer(tb testing.TB, ctx context.Context, o *originLog, cacheDir string) *Peer {
	tb.Helper()
	h, err := f.mem.NewHost("")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := NewPeer(ctx, PeerConfig{CacheDir: cacheDir, Origin: o.url, Trust: manifest.NewKeySet(manifest.PublicOf(f.key)), Host: h})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// originLog is a real origin over a layout, behind a handler that records
// every request by layout path and can hold the requests for chosen paths
// until released.
type originLog struct {
	url string

	mu      sync.Mutex
	reqs    map[string]int   // guarded by mu: layout path → requests
	bytes   map[string]int64 // guarded by mu: layout path → response body bytes
	held    map[string]bool  // guarded by mu: paths whose requests wait for gate
	gate    chan struct{}    // guarded by mu: closed when held requests may proceed
	waiting int              // guarded by mu: requests waiting at the gate
}

func newOriginLog(tb testing.TB, dir string) *originLog {
	tb.Helper()
	srv, err := origin.New(origin.Config{Dir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	o := &originLog{reqs: map[string]int{}, bytes: map[string]int64{}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/")
		o.mu.Lock()
		o.reqs[p]++
		var gate chan struct{}
		if o.held[p] {
			gate = o.gate
			o.waiting++
		}
		o.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
			}
			o.mu.Lock()
			o.waiting--
			o.mu.Unlock()
		}
		cw := &byteCounter{ResponseWriter: w}
		srv.Handler().ServeHTTP(cw, r)
		o.mu.Lock()
		o.bytes[p] += cw.n
		o.mu.Unlock()
	}))
	tb.Cleanup(hs.Close)
	tb.Cleanup(o.release) // before Close, which waits for held requests
	o.url = hs.URL
	return o
}

type byteCounter struct {
	http.ResponseWriter
	n int64
}

func (c *byteCounter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// hold makes requests for paths wait until release.
func (o *originLog) hold(paths map[string]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.held, o.gate = paths, make(chan struct{})
}

// release lets held requests proceed, and stops holding.
func (o *originLog) release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gate != nil {
		close(o.gate)
	}
	o.held, o.gate = nil, nil
}

func (o *originLog) waitingAtGate() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.waiting
}

// originView is a snapshot of an originLog, read through a fixture's
// ownership map.
type originView struct {
	reqs     map[string]int
	bytes    map[string]int64
	requests int // all requests
	// Per content file: distinct chunks requested, chunk requests and
	// bytes (repeats included), hash layer requests. A chunk of identical
	// files counts for each.
	chunks     map[string]map[string]bool
	chunkReqs  map[string]int
	chunkBytes map[string]int64
	layerReqs  map[string]int
	manifests  int
	unknown    []string // paths that are none of the above

	chunkBytesAll int64 // chunk bytes served, repeats included
}

func (f *onDemandFixture) view(o *originLog) originView {
	o.mu.Lock()
	v := originView{reqs: maps.Clone(o.reqs), bytes: maps.Clone(o.bytes)}
	o.mu.Unlock()
	v.chunks, v.chunkReqs, v.chunkBytes, v.layerReqs = map[string]map[string]bool{}, map[string]int{}, map[string]int64{}, map[string]int{}
	for p, n := range v.reqs {
		v.requests += n
		files := f.owner[p]
		switch {
		case p == layout.ManifestPath(f.id):
			v.manifests += n
		case len(files) > 0 && strings.HasPrefix(p, layout.ChunkDir+"/"):
			v.chunkBytesAll += v.bytes[p]
			for _, file := range files {
				if v.chunks[file] == nil {
					v.chunks[file] = map[string]bool{}
				}
				v.chunks[file][p] = true
				v.chunkReqs[file] += n
				v.chunkBytes[file] += v.bytes[p]
			}
		case len(files) > 0 && strings.HasPrefix(p, layout.HashLayerDir+"/"):
			for _, file := range files {
				v.layerReqs[file] += n
			}
		default:
			v.unknown = append(v.unknown, p)
		}
	}
	slices.Sort(v.unknown)
	return v
}

// repeats describes the chunks the origin served more than once.
func (v originView) repeats(f *onDemandFixture) []string {
	var out []string
	for p, n := range v.reqs {
		if n > 1 && strings.HasPrefix(p, layout.ChunkDir+"/") {
			out = append(out, fmt.Sprintf("%s of %v ×%d (%d bytes)", p, f.owner[p], n, v.bytes[p]))
		}
	}
	slices.Sort(out)
	return out
}

// touched lists the content files with any chunk or hash layer requested.
func (v originView) touched() []string {
	var fs []string
	for file := range v.chunks {
		fs = append(fs, file)
	}
	for file := range v.layerReqs {
		if v.chunks[file] == nil {
			fs = append(fs, file)
		}
	}
	slices.Sort(fs)
	return fs
}

// twoRenditionHLS writes master.m3u8 over two 30 s video renditions cut in
// 2 s TS segments: 320x240 at 400 kbit/s in v0/ (several chunks a segment)
// and 160x120 at 120 kbit/s in v1/.
func twoRenditionHLS(t testing.TB, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mediatest.FFmpeg(t), "-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "30",
		"-map", "0:v", "-map", "0:v",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
		"-s:v:1", "160x120", "-b:v:0", "400k", "-b:v:1", "120k",
		"-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
		"-master_pl_name", "master.m3u8", "-var_stream_map", "v:0 v:1",
		"-hls_segment_filename", "v%v/seg%d.ts", "v%v/index.m3u8")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	return filepath.Join(dir, "master.m3u8")
}

// viewer is a player-like client of one gateway: it asks for playlists and
// segments one at a time, in order, under one playback name.
type viewer struct {
	t    *testing.T
	base string // gateway URL of the content, ending in /
	src  string // the published directory, to check bodies against
}

func (v viewer) get(path string) []byte {
	v.t.Helper()
	req, _ := http.NewRequest("GET", v.base+path, nil)
	req.Header.Set(PlaybackHeader, "viewer")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		v.t.Fatalf("GET %s: %s, %v: %.200s", path, resp.Status, err, body)
	}
	want, err := os.ReadFile(filepath.Join(v.src, filepath.FromSlash(path)))
	if err != nil {
		v.t.Fatal(err)
	}
	if !bytes.Equal(body, want) {
		v.t.Fatalf("GET %s: %d bytes differ from the %d published", path, len(body), len(want))
	}
	return body
}

// segmentRange names segments [from, to) of a rendition.
func segmentRange(r manifest.Rendition, from, to int) map[string]bool {
	s := map[string]bool{}
	for _, seg := range r.Segments[from:min(to, len(r.Segments))] {
		s[seg.Path] = true
	}
	return s
}

func union(sets ...map[string]bool) map[string]bool {
	u := map[string]bool{}
	for _, s := range sets {
		for k := range s {
			u[k] = true
		}
	}
	return u
}

// held reports whether sess holds every chunk of the files named.
func held(sess *swarm.Session, fileIdx map[string]int, files map[string]bool) bool {
	for p := range files {
		a, b := sess.Content().FileChunks(fileIdx[p])
		for i := a; i < b; i++ {
			if !sess.Has(i) {
				return false
			}
		}
	}
	return true
}

func TestPlaybackFetchesOnlyThePlayedRendition(t *testing.T) {
	f := newOnDemandFixture(t, func(dir string) string { return twoRenditionHLS(t, dir) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The expected sets come from the manifest a join fetches.
	o := newOriginLog(t, f.layoutDir)
	p := f.peer(t, ctx, o, t.TempDir())
	t.Cleanup(func() { p.Close() })
	sess, err := p.Join(ctx, f.id)
	if err != nil {
		t.Fatal(err)
	}
	m := sess.Content().Manifest
	if len(m.Media.Renditions) != 2 {
		t.Fatalf("%d renditions published, want 2", len(m.Media.Renditions))
	}
	A, B := m.Media.Renditions[0], m.Media.Renditions[1]
	if len(A.Segments) < 12 || len(B.Segments) < 12 {
		t.Fatalf("renditions of %d and %d segments, want at least 12", len(A.Segments), len(B.Segments))
	}
	fileIdx, size := map[string]int{}, map[string]int64{}
	for i, file := range m.Files {
		fileIdx[file.Path], size[file.Path] = i, file.Size
	}
	sizeOf := func(files map[string]bool) (n int64) {
		for p := range files {
			n += size[p]
		}
		return n
	}
	playlists := map[string]bool{m.Media.Entry: true, A.Playlist: true}
	bFiles := union(map[string]bool{B.Playlist: true}, segmentRange(B, 0, len(B.Segments)))

	gw := httptest.NewServer(p.Gateway())
	defer gw.Close()
	v := viewer{t: t, base: fmt.Sprintf("%s/c/%s/", gw.URL, f.id), src: f.src}

	// checkOnly fails if the origin served anything but the manifest and
	// the allowed files' chunks and layers, or more chunk bytes than the
	// allowed files hold.
	checkOnly := func(when string, vw originView, allowed map[string]bool) {
		t.Helper()
		if len(vw.unknown) > 0 {
			t.Errorf("%s: origin requests outside the content: %v", when, vw.unknown)
		}
		ok := map[core.Hash]bool{} // a file identical to an allowed one is that one
		for file := range allowed {
			ok[f.root[file]] = true
		}
		var inB int64
		for _, file := range vw.touched() {
			if ok[f.root[file]] {
				continue
			}
			t.Errorf("%s: fetched %s (%d chunk requests, %d bytes, %d layer requests), which nobody asked for",
				when, file, vw.chunkReqs[file], vw.chunkBytes[file], vw.layerReqs[file])
			if bFiles[file] {
				inB += vw.chunkBytes[file]
			}
		}
		if inB != 0 {
			t.Errorf("%s: origin served %d bytes of rendition %s", when, inB, B.ID)
		}
		if got, budget := vw.chunkBytesAll, sizeOf(allowed); got > budget {
			t.Errorf("%s: origin served %d chunk bytes, more than the %d of the files asked for and looked ahead to; served more than once: %v",
				when, got, budget, vw.repeats(f))
		}
	}

	t.Run("plays A 0-4", func(t *testing.T) {
		v.t = t
		v.get(m.Media.Entry)
		v.get(A.Playlist)
		for k := range 5 {
			v.get(A.Segments[k].Path)
		}
		// The look-ahead after segment 4 is segments 5..7; wait for it
		// rather than for a time.
		ahead := segmentRange(A, 5, 8)
		waitFor(t, "A's look-ahead (segments 5-7) held", func() bool { return held(sess, fileIdx, ahead) })
		vw := f.view(o)
		allowed := union(playlists, segmentRange(A, 0, 8))
		checkOnly("after A 0-4", vw, allowed)
		if vw.manifests != 1 {
			t.Errorf("manifest fetched %d times", vw.manifests)
		}
		for file := range segmentRange(A, 0, 8) {
			if len(vw.chunks[file]) != int(m.Files[fileIdx[file]].Chunks) {
				t.Errorf("%s: %d of its %d chunks fetched", file, len(vw.chunks[file]), m.Files[fileIdx[file]].Chunks)
			}
		}
		// The store agrees: no segment of B.
		for file := range segmentRange(B, 0, len(B.Segments)) {
			a, b := sess.Content().FileChunks(fileIdx[file])
			for i := a; i < b; i++ {
				if sess.Has(i) {
					t.Errorf("the peer holds %s of rendition %s", sess.Content().Describe(i), B.ID)
				}
			}
		}
		t.Logf("A 0-4 played: %d origin requests, %d chunk bytes (A 0-7 hold %d)", vw.requests, vw.chunkBytesAll, sizeOf(segmentRange(A, 0, 8)))
	})

	t.Run("switches to B at 5", func(t *testing.T) {
		v.t = t
		v.get(B.Playlist)
		v.get(B.Segments[5].Path)
		v.get(B.Segments[6].Path)
		ahead := segmentRange(B, 7, 10)
		waitFor(t, "B's look-ahead (segments 7-9) held", func() bool { return held(sess, fileIdx, ahead) })
		vw := f.view(o)
		// A's look-ahead was all held before the switch, so A cannot have
		// grown; B has its two segments and their look-ahead, nothing else.
		allowed := union(playlists, segmentRange(A, 0, 8), map[string]bool{B.Playlist: true}, segmentRange(B, 5, 10))
		checkOnly("after the switch", vw, allowed)
		t.Logf("after the switch: %d origin requests, %d chunk bytes", vw.requests, vw.chunkBytesAll)
	})

	// A switch releases the old rendition's look-ahead: what was not in
	// flight then is never fetched. The origin holds A's look-ahead
	// requests, so the origin lane fills with them and stays full until
	// the switch; what it had started is then exactly what was waiting.
	t.Run("switch drops A's look-ahead", func(t *testing.T) {
		v.t = t
		o2 := newOriginLog(t, f.layoutDir)
		p2 := f.peer(t, ctx, o2, t.TempDir())
		t.Cleanup(func() { p2.Close() })
		sess2, err := p2.Join(ctx, f.id)
		if err != nil {
			t.Fatal(err)
		}
		gw2 := httptest.NewServer(p2.Gateway())
		defer gw2.Close()
		v.base = fmt.Sprintf("%s/c/%s/", gw2.URL, f.id)
		aheadA := segmentRange(A, 5, 8)
		holdPaths := map[string]bool{}
		for p, files := range f.owner {
			if aheadA[files[0]] && strings.HasPrefix(p, layout.ChunkDir+"/") {
				holdPaths[p] = true
			}
		}
		const originSlots = 4 // swarm.Config.OriginParallel's default, which the peer keeps
		if len(holdPaths) <= originSlots {
			t.Fatalf("A's segments 5-7 are %d chunks: too few to fill the origin lane and leave some out", len(holdPaths))
		}
		o2.hold(holdPaths)
		v.get(m.Media.Entry)
		v.get(A.Playlist)
		for k := range 5 {
			v.get(A.Segments[k].Path)
		}
		waitFor(t, "the origin lane full of A's look-ahead", func() bool { return o2.waitingAtGate() == originSlots })
		before := f.view(o2)

		v.get(B.Playlist)
		v.get(B.Segments[5].Path)
		v.get(B.Segments[6].Path)
		o2.release()
		waitFor(t, "B's look-ahead (segments 7-9) held", func() bool { return held(sess2, fileIdx, segmentRange(B, 7, 10)) })
		after := f.view(o2)

		var inFlight, dropped int
		for file := range aheadA {
			for p := range after.chunks[file] {
				if !before.chunks[file][p] {
					t.Errorf("%s of %s requested from the origin after the switch to %s", p, file, B.ID)
				}
			}
			inFlight += len(before.chunks[file])
			dropped += int(m.Files[fileIdx[file]].Chunks) - len(after.chunks[file])
		}
		checkOnly("after the switch", after, union(playlists, segmentRange(A, 0, 8), map[string]bool{B.Playlist: true}, segmentRange(B, 5, 10)))
		t.Logf("A's look-ahead at the switch: %d chunks requested, %d never fetched", inFlight, dropped)
	})
}

// segmentedHLS writes a VOD of n tiny TS-named segments (a few KB each,
// one chunk, bytes drawn from (n, k)) under v0/, its media playlist, and a
// master playlist over it; it returns the master's path.
func segmentedHLS(tb testing.TB, dir string, n int) string {
	tb.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "v0"), 0o755); err != nil {
		tb.Fatal(err)
	}
	var pl strings.Builder
	pl.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n")
	for k := range n {
		name := fmt.Sprintf("seg%05d.ts", k)
		r := rand.New(rand.NewPCG(uint64(n), uint64(k)))
		b := make([]byte, 2048+r.IntN(2048))
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
	p := filepath.Join(dir, "master.m3u8")
	if err := os.WriteFile(p, []byte(master), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// cost is the most origin requests that fetching file can take: its hash
// layer (none for a single chunk) and its chunks.
func cost(file manifest.File) int {
	n := int(file.Chunks)
	if file.Chunks > 1 {
		n++
	}
	return n
}

func TestJoinManySegmentsCostsConstantOriginRequests(t *testing.T) {
	masterCost := map[int]int{}
	for _, n := range []int{30, 3000} {
		t.Run(fmt.Sprintf("%d segments", n), func(t *testing.T) {
			f := newOnDemandFixture(t, func(dir string) string { return segmentedHLS(t, dir, n) })
			if got := len(f.m.Media.Renditions[0].Segments); got != n {
				t.Fatalf("published %d segments, want %d", got, n)
			}
			files := map[string]manifest.File{}
			for _, file := range f.m.Files {
				files[file.Path] = file
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := newOriginLog(t, f.layoutDir)
			p := f.peer(t, ctx, o, t.TempDir())
			t.Cleanup(func() { p.Close() })
			gw := httptest.NewServer(p.Gateway())
			defer gw.Close()
			v := viewer{t: t, base: fmt.Sprintf("%s/c/%s/", gw.URL, f.id), src: f.src}

			// get fetches a playlist and checks that the origin served its
			// chunks and layer (and, first, the manifest) and nothing else.
			seen := 0
			get := func(pl string, extra int) int {
				t.Helper()
				v.get(pl)
				vw := f.view(o)
				reqs := vw.requests - seen
				seen = vw.requests
				if want := extra + cost(files[pl]); reqs > want {
					t.Errorf("GET %s: %d origin requests, want at most %d", pl, reqs, want)
				}
				for _, file := range vw.touched() {
					if file != f.m.Media.Entry && file != f.m.Media.Renditions[0].Playlist {
						t.Errorf("GET %s fetched %s", pl, file)
					}
				}
				if len(vw.unknown) > 0 || vw.manifests != 1 {
					t.Errorf("GET %s: %d manifest requests, others %v", pl, vw.manifests, vw.unknown)
				}
				return reqs
			}
			masterCost[n] = get(f.m.Media.Entry, 1)
			if masterCost[n] > 3 {
				t.Errorf("master playlist of %d segments: %d origin requests, want at most 3", n, masterCost[n])
			}
			media := get(f.m.Media.Renditions[0].Playlist, 0)
			t.Logf("%d segments (%d files): master %d origin requests, media playlist (%d bytes) %d",
				n, len(f.m.Files), masterCost[n], files[f.m.Media.Renditions[0].Playlist].Size, media)
		})
	}
	if masterCost[30] != masterCost[3000] {
		t.Errorf("the master playlist cost %d origin requests with 30 segments and %d with 3000", masterCost[30], masterCost[3000])
	}
}
