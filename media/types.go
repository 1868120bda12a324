package media

import (
	"path"
	"strings"
)

// Media types of the formats Shoal publishes. One table, used both by the
// publisher (the type signed into a manifest) and by the gateway (the
// Content-Type a player receives), and never the host's MIME database:
// that one differs between machines (on some, .ts is a Qt translation
// file, text/vnd.trolltech.linguist), and a signed manifest must not
// depend on where it was made.
const (
	TypeHLS         = "application/vnd.apple.mpegurl"
	TypeDASH        = "application/dash+xml"
	TypeMPEG2TS     = "video/mp2t"
	TypeVideoMP4    = "video/mp4"
	TypeAudioMP4    = "audio/mp4"
	TypeOctetStream = "application/octet-stream"
)

// contentTypes maps a lower-case file extension to its media type. Only
// types a browser never runs as a document or script are listed (no HTML,
// no SVG): the gateway serves every publisher's files on one origin.
var contentTypes = map[string]string{
	// Playlists and manifests.
	".m3u8": TypeHLS,
	".m3u":  TypeHLS,
	".mpd":  TypeDASH,
	// Segments and whole files.
	".ts":   TypeMPEG2TS,
	".m2ts": TypeMPEG2TS,
	".mp4":  TypeVideoMP4,
	".m4s":  TypeVideoMP4,
	".m4v":  TypeVideoMP4,
	".cmfv": TypeVideoMP4,
	".m4a":  TypeAudioMP4,
	".cmfa": TypeAudioMP4,
	".aac":  "audio/aac",
	".ac3":  "audio/ac3",
	".ec3":  "audio/eac3",
	".mp3":  "audio/mpeg",
	".opus": "audio/ogg",
	".webm": "video/webm",
	// Subtitles, thumbnails, side data.
	".vtt":    "text/vtt",
	".webvtt": "text/vtt",
	".ttml":   "application/ttml+xml",
	".cmft":   "application/mp4",
	".jpg":    "image/jpeg",
	".jpeg":   "image/jpeg",
	".png":    "image/png",
	".webp":   "image/webp",
	".json":   "application/json",
	".txt":    "text/plain; charset=utf-8",
}

// known is the set of the table's types.
var known = func() map[string]bool {
	m := map[string]bool{TypeOctetStream: true}
	for _, t := range contentTypes {
		m[t] = true
	}
	return m
}()

// ContentType is the media type of a file named name, by its extension;
// application/octet-stream for an extension not in the table.
func ContentType(name string) string {
	if t, ok := contentTypes[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return TypeOctetStream
}

// AudioContentType is ContentType for a file of an audio-only rendition:
// its MP4 init and media segments are audio/mp4, whatever their extension.
func AudioContentType(name string) string {
	if t := ContentType(name); t != TypeVideoMP4 {
		return t
	}
	return TypeAudioMP4
}

// KnownContentType reports whether t is one of the table's types (or
// application/octet-stream), that is, a type the publisher could have
// chosen. A manifest's type outside the set (from an older publisher that
// used the host's MIME database) is not served; the table's is.
func KnownContentType(t string) bool { return known[t] }
