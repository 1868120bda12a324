package manifest

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// mediaManifest is sampleManifest's files as a one-rendition HLS output.
func mediaManifest(t testing.TB, edit func(*Media)) *Manifest {
	t.Helper()
	m := sampleManifest(t)
	m.Files = append(m.Files,
		File{Path: "index.m3u8", Size: 0, Root: Root(nil)},
		File{Path: "init.mp4", Size: 0, Root: Root(nil)},
	)
	m.Media = &Media{Kind: MediaHLS, Entry: "index.m3u8", Renditions: []Rendition{{
		ID: "index.m3u8", Playlist: "index.m3u8", Bandwidth: 100, Codecs: "avc1.f4000b", Resolution: "160x120", Init: "init.mp4",
		Segments: []MediaSegment{{Path: "dir/a.bin", DurationMs: 2000, Seq: 0}, {Path: "empty", DurationMs: 1999, Seq: 1}},
	}}}
	if edit != nil {
		edit(m.Media)
	}
	if err := m.Sign(testKey(1)); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMediaRoundTrip(t *testing.T) {
	m := mediaManifest(t, nil)
	b := encode(t, m)
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Media, m.Media) || !bytes.Equal(encode(t, got), b) {
		t.Fatalf("media round trip: %+v", got.Media)
	}
	// A manifest without media keeps the encoding it had before media existed.
	if bytes.Contains(encode(t, sampleManifest(t)), []byte(`"media"`)) {
		t.Fatal("empty media encoded")
	}
}

func TestMediaValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Media)
		want error
	}{
		{"kind", func(m *Media) { m.Kind = "smooth" }, ErrMalformed},
		{"entry not a file", func(m *Media) { m.Entry = "master.m3u8" }, ErrMalformed},
		{"entry bad path", func(m *Media) { m.Entry = "../index.m3u8" }, ErrBadPath},
		{"no renditions", func(m *Media) { m.Renditions = nil }, ErrMalformed},
		{"duplicate id", func(m *Media) { m.Renditions = append(m.Renditions, m.Renditions[0]) }, ErrMalformed},
		{"dash with playlist", func(m *Media) { m.Kind = MediaDASH }, ErrMalformed},
		{"hls without playlist", func(m *Media) { m.Renditions[0].Playlist = "" }, ErrMalformed},
		{"init not a file", func(m *Media) { m.Renditions[0].Init = "i.mp4" }, ErrMalformed},
		{"segment not a file", func(m *Media) { m.Renditions[0].Segments[0].Path = "dir" }, ErrMalformed},
		{"zero duration", func(m *Media) { m.Renditions[0].Segments[0].DurationMs = 0 }, ErrMalformed},
		{"huge duration", func(m *Media) { m.Renditions[0].Segments[0].DurationMs = MaxSegmentDurationMs + 1 }, ErrMalformed},
		{"seq not increasing", func(m *Media) { m.Renditions[0].Segments[1].Seq = 0 }, ErrMalformed},
		{"bad resolution", func(m *Media) { m.Renditions[0].Resolution = "hd" }, ErrMalformed},
		{"codecs control", func(m *Media) { m.Renditions[0].Codecs = "a\nb" }, ErrMalformed},
		{"negative bandwidth", func(m *Media) { m.Renditions[0].Bandwidth = -1 }, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(encode(t, mediaManifest(t, tc.edit)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzDecodeMedia(f *testing.F) {
	f.Add(encode(f, mediaManifest(f, nil)))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("encode(decode(b)) != b: %v", err)
		}
		m2, err := Decode(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode → encode → decode changed the manifest: %v", err)
		}
	})
}
