package media

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/media/mediatest"
)

func open(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// near reports whether d is within one frame (40 ms at 25 fps) of want.
func near(d, want time.Duration) bool {
	return d > want-40*time.Millisecond && d < want+40*time.Millisecond
}

func TestParseFFmpegHLS(t *testing.T) {
	for _, tc := range []struct{ segType, ext, init string }{
		{mediatest.TS, ".ts", ""},
		{mediatest.FMP4, ".m4s", "init.mp4"},
	} {
		t.Run(tc.segType, func(t *testing.T) {
			dir := t.TempDir()
			pl := mediatest.HLS(t, dir, tc.segType)
			p, err := ParseMediaPlaylist("index.m3u8", open(t, pl))
			if err != nil {
				t.Fatal(err)
			}
			if !p.Ended || p.Type != "VOD" || len(p.Segments) != 3 {
				t.Fatalf("playlist %+v", p)
			}
			if got := TotalDuration(p.Segments); !near(got, mediatest.Duration) {
				t.Fatalf("total duration %v, want about %v", got, mediatest.Duration)
			}
			for i, s := range p.Segments {
				if filepath.Ext(s.URI) != tc.ext || s.Init != tc.init || s.Seq != int64(i) {
					t.Fatalf("segment %d: %+v", i, s)
				}
				if _, err := os.Stat(filepath.Join(dir, s.URI)); err != nil {
					t.Fatalf("segment %d: %v", i, err)
				}
			}
			roundTrip(t, p)
		})
	}
}

func TestParseFFmpegMaster(t *testing.T) {
	dir := t.TempDir()
	m, err := ParseMaster("master.m3u8", open(t, mediatest.HLSMaster(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Variants) != 2 {
		t.Fatalf("%d variants, want 2", len(m.Variants))
	}
	for i, want := range []string{"160x120", "80x60"} {
		v := m.Variants[i]
		if v.Resolution != want || v.Bandwidth <= 0 || v.Codecs == "" {
			t.Fatalf("variant %d: %+v", i, v)
		}
		p, err := ParseMediaPlaylist(v.URI, open(t, filepath.Join(dir, v.URI)))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Segments) != 3 || !near(TotalDuration(p.Segments), mediatest.Duration) {
			t.Fatalf("variant %d: %d segments, %v", i, len(p.Segments), TotalDuration(p.Segments))
		}
	}
	if m.Variants[0].Bandwidth <= m.Variants[1].Bandwidth {
		t.Fatalf("bandwidths %d, %d: the larger rendition should need more", m.Variants[0].Bandwidth, m.Variants[1].Bandwidth)
	}
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := ParseMaster("enc", bytesReader(enc))
	if err != nil || !equalJSON(m, m2) {
		t.Fatalf("re-parse: %v\n%s", err, enc)
	}
}

func TestParseFFmpegDASH(t *testing.T) {
	dir := t.TempDir()
	m, err := ParseMPD("manifest.mpd", open(t, mediatest.DASH(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	if m.Dynamic || !near(m.Duration, mediatest.Duration) || len(m.AdaptationSets) != 2 {
		t.Fatalf("MPD %+v", m)
	}
	for _, as := range m.AdaptationSets {
		if len(as.Representations) != 1 {
			t.Fatalf("adaptation set %s: %d representations", as.ID, len(as.Representations))
		}
		r := as.Representations[0]
		if r.Init == "" || len(r.Segments) != 3 || r.Bandwidth <= 0 || r.Codecs == "" {
			t.Fatalf("representation %+v", r)
		}
		// Audio segments follow AAC frames, so allow more than one video frame.
		if d := TotalDuration(r.Segments); d < mediatest.Duration-100*time.Millisecond || d > mediatest.Duration+100*time.Millisecond {
			t.Fatalf("representation %s lasts %v", r.ID, d)
		}
		for _, p := range append([]string{r.Init}, segURIs(r.Segments)...) {
			if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
				t.Fatalf("representation %s: %v", r.ID, err)
			}
		}
		if as.ContentType == "video" && (r.Width != 160 || r.Height != 120) {
			t.Fatalf("video representation %dx%d", r.Width, r.Height)
		}
	}
}

func segURIs(segs []Segment) []string {
	var out []string
	for _, s := range segs {
		out = append(out, s.URI)
	}
	return out
}
