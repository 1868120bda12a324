package media

import "testing"

func TestContentTypeFromFixedTable(t *testing.T) {
	for _, tc := range []struct{ name, want, audio string }{
		{"v0/seg1.ts", "video/mp2t", "video/mp2t"}, // not the host's text/vnd.trolltech.linguist
		{"index.M3U8", "application/vnd.apple.mpegurl", "application/vnd.apple.mpegurl"},
		{"manifest.mpd", "application/dash+xml", "application/dash+xml"},
		{"init-stream0.m4s", "video/mp4", "audio/mp4"},
		{"init.mp4", "video/mp4", "audio/mp4"},
		{"a/seg.m4a", "audio/mp4", "audio/mp4"},
		{"audio.aac", "audio/aac", "audio/aac"},
		{"subs/en.vtt", "text/vtt", "text/vtt"},
		{"meta.json", "application/json", "application/json"},
		{"page.html", "application/octet-stream", "application/octet-stream"},
		{"logo.svg", "application/octet-stream", "application/octet-stream"},
		{"app.tar.gz", "application/octet-stream", "application/octet-stream"},
		{"noext", "application/octet-stream", "application/octet-stream"},
	} {
		if got := ContentType(tc.name); got != tc.want {
			t.Errorf("ContentType(%q) = %q, want %q", tc.name, got, tc.want)
		}
		if got := AudioContentType(tc.name); got != tc.audio {
			t.Errorf("AudioContentType(%q) = %q, want %q", tc.name, got, tc.audio)
		}
		if !KnownContentType(tc.want) {
			t.Errorf("KnownContentType(%q) = false for a type of the table", tc.want)
		}
	}
	for _, bad := range []string{"text/vnd.trolltech.linguist", "text/html", "image/svg+xml", ""} {
		if KnownContentType(bad) {
			t.Errorf("KnownContentType(%q) = true", bad)
		}
	}
}
