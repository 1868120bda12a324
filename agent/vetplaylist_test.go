package agent

import (
	"errors"
	"testing"

	"github.com/shoal-cdn/shoal/manifest"
)

func TestVetPlaylistRefusesEscapingURIs(t *testing.T) {
	const head = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n"
	for _, tc := range []struct {
		name, uri string
		ok        bool
	}{
		{"relative", "seg0.ts", true},
		{"subdir", "v0/seg0.ts", true},
		{"absolute", "http://cdn.example/seg0.ts", false},
		{"root-relative", "/seg0.ts", false},
		{"escaping", "../../seg0.ts", false},
	} {
		err := vetPlaylist(manifest.MediaHLS, "index.m3u8", []byte(head+tc.uri+"\n#EXT-X-ENDLIST\n"))
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, errBadPlaylist) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	master := "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttps://elsewhere/v.m3u8\n"
	if err := vetPlaylist(manifest.MediaHLS, "master.m3u8", []byte(master)); !errors.Is(err, errBadPlaylist) {
		t.Errorf("master with an absolute variant: %v", err)
	}
}

func TestMediaIndexAndSplit(t *testing.T) {
	m := &manifest.Manifest{
		Files: []manifest.File{{Path: "master.m3u8"}, {Path: "v/i.m3u8"}, {Path: "v/init.mp4"}, {Path: "v/0.m4s"}, {Path: "v/1.m4s"}, {Path: "notes.txt"}},
		Media: &manifest.Media{Kind: manifest.MediaHLS, Entry: "master.m3u8", Renditions: []manifest.Rendition{{
			ID: "v/i.m3u8", Playlist: "v/i.m3u8", Init: "v/init.mp4",
			Segments: []manifest.MediaSegment{{Path: "v/0.m4s", DurationMs: 2000}, {Path: "v/1.m4s", DurationMs: 2000, Seq: 1}},
		}}},
	}
	ix := newMediaIndex(m)
	for p, want := range map[string]mediaRef{"master.m3u8": {rend: -1}, "v/i.m3u8": {rend: -1}, "v/init.mp4": {0, -1}, "v/1.m4s": {0, 1}, "other.mpd": {rend: -1}} {
		if got, ok := ix.lookup(p); !ok || got != want {
			t.Errorf("lookup %s = %+v %v, want %+v", p, got, ok, want)
		}
	}
	if _, ok := ix.lookup("notes.txt"); ok {
		t.Error("a plain file of a media content is served as media")
	}
	// Chunks 10, 11, 12 (size 100) of a file starting at chunk 10; bytes 50–250.
	src := chunkSources{from: 10, kinds: []byte{srcDirect, srcHeld, srcWaited}}
	if d, h, w := src.split(100, 50, 250, 10); d != 50 || h != 100 || w != 50 {
		t.Errorf("split: direct %d held %d waited %d", d, h, w)
	}
}
