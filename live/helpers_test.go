package live

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media"
	"github.com/shoal-cdn/shoal/media/mediatest"
)

// testKey is deterministic so failures reproduce.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// encoder replays a finished ffmpeg HLS output into a watch directory one
// segment at a time, the way a live encoder grows it: segment file first,
// then the playlist (atomically) with a sliding list of listSize entries.
type encoder struct {
	t        testing.TB
	src      string // the finished output
	watch    string
	vod      *media.MediaPlaylist
	listSize int
	n        int // segments released so far
}

func newEncoder(t testing.TB, listSize int) *encoder {
	t.Helper()
	src := t.TempDir()
	pl := mediatest.HLS(t, src, mediatest.TS)
	b, err := os.ReadFile(pl)
	if err != nil {
		t.Fatal(err)
	}
	vod, err := media.ParseMediaPlaylist(pl, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(vod.Segments) < 3 {
		t.Fatalf("test output has %d segments, want at least 3", len(vod.Segments))
	}
	return &encoder{t: t, src: src, watch: t.TempDir(), vod: vod, listSize: listSize}
}

func (e *encoder) segments() int { return len(e.vod.Segments) }

// next releases one more segment; after the last it ends the playlist.
func (e *encoder) next() {
	e.t.Helper()
	if e.n < len(e.vod.Segments) {
		s := e.vod.Segments[e.n]
		b, err := os.ReadFile(filepath.Join(e.src, s.URI))
		if err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.watch, s.URI), b, 0o644); err != nil {
			e.t.Fatal(err)
		}
		e.n++
	}
	first := max(0, e.n-e.listSize)
	pl := &media.MediaPlaylist{
		Version:        3,
		TargetDuration: e.vod.TargetDuration,
		MediaSequence:  int64(first),
		Segments:       e.vod.Segments[first:e.n],
		Ended:          e.n == len(e.vod.Segments),
	}
	b, err := pl.Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	tmp := filepath.Join(e.watch, "index.m3u8.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.watch, "index.m3u8")); err != nil {
		e.t.Fatal(err)
	}
}

func newTestPublisher(t testing.TB, watch, out string, window int, clock core.Clock) *Publisher {
	t.Helper()
	p, err := NewPublisher(PublisherConfig{
		Key: testKey(1), Channel: "news", Watch: watch, Out: out, Window: window,
		ChunkSize: 16 << 10, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signedUpdate makes a valid update of channel "news" under key seed.
func signedUpdate(t testing.TB, keySeed byte, seq uint64) []byte {
	t.Helper()
	u := &manifest.ChannelUpdate{
		Channel: "news", Seq: seq, Created: time.Unix(int64(seq), 0).UTC(), TargetDuration: 2, MediaSequence: seq,
		Segments: []manifest.ChannelSegment{{Seq: seq, Name: "s.ts", DurationMs: 2000, Size: 10, Content: core.ContentID(core.SumSHA256([]byte{byte(seq)}))}},
	}
	if err := u.Sign(testKey(keySeed)); err != nil {
		t.Fatal(err)
	}
	b, err := u.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
