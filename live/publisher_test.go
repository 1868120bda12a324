package live

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media"
	"github.com/shoal-cdn/shoal/media/mediatest"
	"github.com/shoal-cdn/shoal/origin"
)

func TestPublisherFollowsGrowingPlaylist(t *testing.T) {
	enc := newEncoder(t, 5)
	out := t.TempDir()
	clock := &core.ManualClock{T: time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)}
	const window = 2
	p := newTestPublisher(t, enc.watch, out, window, clock)
	ctx := context.Background()
	pub := manifest.PublicOf(testKey(1))

	if _, err := p.Step(ctx); !errors.Is(err, ErrPlaylist) {
		t.Fatalf("Step before the playlist exists: %v, want ErrPlaylist", err)
	}
	var last *manifest.ChannelUpdate
	for i := range enc.segments() {
		enc.next()
		clock.Advance(time.Second)
		u, err := p.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if u == nil {
			t.Fatalf("segment %d: no update", i)
		}
		if last != nil && u.Seq <= last.Seq {
			t.Fatalf("update seq %d after %d", u.Seq, last.Seq)
		}
		if want := min(i+1, window); len(u.Segments) != want {
			t.Fatalf("segment %d: window of %d, want %d", i, len(u.Segments), want)
		}
		if got := u.Segments[len(u.Segments)-1].Seq; got != uint64(i) {
			t.Fatalf("newest segment %d, want %d", got, i)
		}
		if u.Ended != (i == enc.segments()-1) {
			t.Fatalf("segment %d: ended = %v", i, u.Ended)
		}
		// latest and the numbered file hold the update, verifiably.
		for _, name := range []string{LatestPath(p.ID()), UpdatePath(p.ID(), u.Seq)} {
			b, err := os.ReadFile(filepath.Join(out, name))
			if err != nil {
				t.Fatal(err)
			}
			got, err := manifest.DecodeChannelUpdate(b, pub)
			if err != nil || got.Seq != u.Seq {
				t.Fatalf("%s: %v, seq %v", name, err, got)
			}
		}
		if again, err := p.Step(ctx); err != nil || again != nil {
			t.Fatalf("Step with nothing new: %v, %v", again, err)
		}
		last = u
	}
	// Every listed segment is a content whose single file has the
	// segment's bytes.
	for _, s := range last.Segments {
		b, err := os.ReadFile(filepath.Join(out, layout.ManifestPath(s.Content)))
		if err != nil {
			t.Fatal(err)
		}
		m, err := manifest.DecodeTrusted(b, s.Content, pub)
		if err != nil {
			t.Fatal(err)
		}
		src, _ := os.ReadFile(filepath.Join(enc.watch, s.Name))
		if len(m.Files) != 1 || m.Files[0].Size != s.Size || int64(len(src)) != s.Size {
			t.Fatalf("segment %s: manifest files %+v, size %d", s.Name, m.Files, len(src))
		}
	}
	if p.ID() != manifest.ChannelIDOf(pub, "news") {
		t.Fatal("publisher channel ID")
	}

	// A restarted publisher numbers on from the latest update.
	p2 := newTestPublisher(t, enc.watch, out, window, &core.ManualClock{T: time.Unix(0, 0)})
	u, err := p2.Step(ctx)
	if err != nil || u == nil || u.Seq <= last.Seq {
		t.Fatalf("restarted publisher: %v, %v (last seq %d)", u, err, last.Seq)
	}
}

func TestPublisherRejectsFMP4(t *testing.T) {
	src := t.TempDir()
	mediatest.HLS(t, src, mediatest.FMP4)
	p := newTestPublisher(t, src, t.TempDir(), 3, nil)
	if _, err := p.Step(context.Background()); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("fMP4 playlist: %v, want ErrUnsupported", err)
	}
}

func TestFollowerOffer(t *testing.T) {
	f := NewFollower(FollowerConfig{Channel: manifest.ChannelIDOf(manifest.PublicOf(testKey(1)), "news"), Trust: manifest.PublicOf(testKey(1))})
	if _, err := f.Offer(signedUpdate(t, 1, 5)); err != nil {
		t.Fatal(err)
	}
	changed := f.Changed()
	badSig := signedUpdate(t, 1, 9)
	i := bytes.Index(badSig, []byte(`"signature":"`)) + len(`"signature":"`)
	badSig[i] ^= 'A' ^ 'B'
	other := manifest.ChannelUpdate{Channel: "sports", Seq: 9, TargetDuration: 2}
	if err := other.Sign(testKey(1)); err != nil {
		t.Fatal(err)
	}
	otherB, _ := other.Encode()
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"bad signature", badSig, manifest.ErrBadSignature},
		{"other key", signedUpdate(t, 2, 9), manifest.ErrUntrusted},
		{"other channel", otherB, manifest.ErrWrongChannel},
		{"older", signedUpdate(t, 1, 4), manifest.ErrStaleUpdate},
		{"same", signedUpdate(t, 1, 5), manifest.ErrStaleUpdate},
		{"garbage", []byte("{"), manifest.ErrMalformed},
	} {
		if _, err := f.Offer(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	select {
	case <-changed:
		t.Fatal("a rejected update changed the follower")
	default:
	}
	var seen []uint64
	f.OnUpdate(func(u *manifest.ChannelUpdate, _ []byte) { seen = append(seen, u.Seq) })
	if _, err := f.Offer(signedUpdate(t, 1, 6)); err != nil {
		t.Fatalf("newer update: %v", err)
	}
	<-changed
	if u, _ := f.Latest(); u.Seq != 6 || len(seen) != 1 || seen[0] != 6 {
		t.Fatalf("latest %d, subscribers saw %v", u.Seq, seen)
	}
}

func TestFollowerPollsOrigin(t *testing.T) {
	enc := newEncoder(t, 5)
	out := t.TempDir()
	p := newTestPublisher(t, enc.watch, out, 3, nil)
	srv, err := origin.New(origin.Config{Dir: out})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	c, err := cdn.New(cdn.Config{BaseURL: ts.URL, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := NewFollower(FollowerConfig{Channel: p.ID(), Trust: manifest.PublicOf(testKey(1)), Origin: c})
	ctx := context.Background()
	if err := f.Poll(ctx); !errors.Is(err, cdn.ErrNotFound) {
		t.Fatalf("poll before the first update: %v, want ErrNotFound", err)
	}
	for range 2 {
		enc.next()
		u, err := p.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.Latest(); got == nil || got.Seq != u.Seq {
			t.Fatalf("follower holds %v, publisher wrote %d", got, u.Seq)
		}
	}
	if err := f.Poll(ctx); err != nil { // unchanged: not an error
		t.Fatal(err)
	}
}

func TestPlaylist(t *testing.T) {
	u, err := manifest.DecodeChannelUpdate(signedUpdate(t, 1, 5), manifest.PublicOf(testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Playlist(u, "/live/x/")
	if err != nil {
		t.Fatal(err)
	}
	pl, err := media.ParseMediaPlaylist("live", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if pl.Ended || pl.MediaSequence != 5 || len(pl.Segments) != 1 || pl.Segments[0].URI != "/live/x/s.ts" || pl.Segments[0].Duration != 2*time.Second {
		t.Fatalf("playlist %+v\n%s", pl, b)
	}
}

// TestPublisherRealFFmpeg follows ffmpeg writing a live HLS output in real
// time, from before the playlist exists to EXT-X-ENDLIST.
func TestPublisherRealFFmpeg(t *testing.T) {
	watch, out := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mediatest.FFmpeg(t), "-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1",
		"-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "4",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-sc_threshold", "0",
		"-f", "hls", "-hls_time", "1", "-hls_list_size", "5", filepath.Join(watch, "index.m3u8"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := newTestPublisher(t, watch, out, 3, nil)
	p.cfg.Poll = 50 * time.Millisecond
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(out, LatestPath(p.ID())))
	if err != nil {
		t.Fatal(err)
	}
	u, err := manifest.DecodeChannelUpdate(b, manifest.PublicOf(testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	if !u.Ended || len(u.Segments) != 3 || u.Segments[2].Seq < 3 {
		t.Fatalf("final update: ended %v, %d segments, %+v", u.Ended, len(u.Segments), u.Segments)
	}
	// Several updates were written as the output grew, not one at the end.
	if len(p.written) < 3 {
		t.Fatalf("%d updates written", len(p.written))
	}
}
