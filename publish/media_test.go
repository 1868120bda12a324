package publish

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media"
	"github.com/shoal-cdn/shoal/media/mediatest"
)

// publishDir publishes dir and returns the manifest as a receiver decodes it.
func publishDir(t *testing.T, dir string) *manifest.Manifest {
	t.Helper()
	out := t.TempDir()
	res, err := Publish(context.Background(), Config{Key: testKey, Out: out, ChunkSize: core.MinChunkSize, Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := os.ReadFile(filepath.Join(out, layout.ManifestPath(res.ID)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.DecodeTrusted(enc, res.ID, manifest.PublicOf(testKey))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func checkRendition(t *testing.T, r manifest.Rendition, init bool) {
	t.Helper()
	if len(r.Segments) != 3 || (r.Init != "") != init {
		t.Fatalf("rendition %+v", r)
	}
	var ms int64
	for _, s := range r.Segments {
		ms += s.DurationMs
	}
	if want := mediatest.Duration.Milliseconds(); ms < want-100 || ms > want+100 {
		t.Fatalf("rendition %s lasts %d ms, want about %d", r.ID, ms, want)
	}
}

func TestPublishHLSAndDASH(t *testing.T) {
	for _, tc := range []struct {
		name, kind, entry string
		gen               func(t *testing.T, dir string)
		renditions        int
		init              bool
	}{
		{"hls ts", manifest.MediaHLS, "index.m3u8", func(t *testing.T, d string) { mediatest.HLS(t, d, mediatest.TS) }, 1, false},
		{"hls fmp4", manifest.MediaHLS, "index.m3u8", func(t *testing.T, d string) { mediatest.HLS(t, d, mediatest.FMP4) }, 1, true},
		{"hls master", manifest.MediaHLS, "master.m3u8", func(t *testing.T, d string) { mediatest.HLSMaster(t, d) }, 2, false},
		{"dash", manifest.MediaDASH, "manifest.mpd", func(t *testing.T, d string) { mediatest.DASH(t, d) }, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.gen(t, dir)
			m := publishDir(t, dir)
			md := m.Media
			if md == nil || md.Kind != tc.kind || md.Entry != tc.entry || len(md.Renditions) != tc.renditions {
				t.Fatalf("media %+v", md)
			}
			for _, r := range md.Renditions {
				checkRendition(t, r, tc.init)
			}
			if tc.name == "hls master" {
				r0, r1 := md.Renditions[0], md.Renditions[1]
				if r0.Playlist != "v0/index.m3u8" || r0.Resolution != "160x120" || r1.Resolution != "80x60" || r0.Segments[0].Path != "v0/seg0.ts" || r0.Bandwidth <= r1.Bandwidth {
					t.Fatalf("renditions %+v", md.Renditions)
				}
			}
		})
	}
}

func TestPublishPlainFilesHasNoMedia(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.bin"), []byte("x"), 0o644)
	if m := publishDir(t, dir); m.Media != nil {
		t.Fatalf("media %+v", m.Media)
	}
}

func TestPublishRejectsBrokenMedia(t *testing.T) {
	const head = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error
		also  error
	}{
		{"malformed playlist", map[string]string{"index.m3u8": head + "#EXTINF:x,\na.ts\n", "a.ts": "ts"}, []string{"index.m3u8:3:"}, media.ErrMalformed},
		{"missing segment", map[string]string{"index.m3u8": head + "#EXTINF:2,\nb.ts\n", "a.ts": "ts"}, []string{"index.m3u8", `"b.ts"`}, nil},
		{"escaping segment", map[string]string{"index.m3u8": head + "#EXTINF:2,\n../a.ts\n"}, []string{"index.m3u8"}, media.ErrMalformed},
		{"absolute segment", map[string]string{"index.m3u8": head + "#EXTINF:2,\nhttp://x/a.ts\n"}, []string{"index.m3u8"}, media.ErrUnsupported},
		{"two media playlists", map[string]string{"a.m3u8": head, "b.m3u8": head}, []string{"no master"}, nil},
		{"hls and dash", map[string]string{"a.m3u8": head, "b.mpd": "<MPD/>"}, []string{"b.mpd"}, nil},
		{"bad master", map[string]string{"m.m3u8": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=x\nv.m3u8\n"}, []string{"m.m3u8:2:"}, media.ErrMalformed},
		{"bad mpd", map[string]string{"m.mpd": "<MPD>\n<Period>\n</MPD>"}, []string{"m.mpd:3:"}, media.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, body := range tc.files {
				os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644)
			}
			_, err := Publish(context.Background(), Config{Key: testKey, Out: t.TempDir(), Paths: []string{dir}})
			if !errors.Is(err, ErrInput) || tc.also != nil && !errors.Is(err, tc.also) {
				t.Fatalf("got %v, want ErrInput and %v", err, tc.also)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

// TestPublishSignsMediaTypesFromTable guards that the types signed into a
// manifest come from media's fixed table (not the host's MIME database,
// where .ts may be text/vnd.trolltech.linguist), and that the segments of
// an audio-only DASH representation are audio/mp4.
func TestPublishSignsMediaTypesFromTable(t *testing.T) {
	hls := t.TempDir()
	mediatest.HLS(t, hls, mediatest.TS)
	dash := t.TempDir()
	mediatest.DASH(t, dash)
	for _, m := range []*manifest.Manifest{publishDir(t, hls), publishDir(t, dash)} {
		audio := map[string]bool{}
		if m.Media.Kind == manifest.MediaDASH {
			// ffmpeg's DASH output: stream0 is the video, stream1 the audio.
			for _, f := range m.Files {
				audio[f.Path] = strings.Contains(f.Path, "stream1")
			}
			if !audio["init-stream1.m4s"] {
				t.Fatalf("no audio representation in %+v", m.Files)
			}
		}
		for _, f := range m.Files {
			want := media.ContentType(f.Path)
			if audio[f.Path] {
				want = "audio/mp4"
			}
			switch {
			case strings.HasSuffix(f.Path, ".ts") && f.MediaType != "video/mp2t",
				strings.HasSuffix(f.Path, ".m3u8") && f.MediaType != "application/vnd.apple.mpegurl",
				strings.HasSuffix(f.Path, ".mpd") && f.MediaType != "application/dash+xml",
				f.MediaType != want:
				t.Errorf("%s: %s signed as %q, want %q", m.Media.Kind, f.Path, f.MediaType, want)
			}
		}
	}
}
