package manifest

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Media kinds.
const (
	MediaHLS  = "hls"
	MediaDASH = "dash"
)

// Limits on a manifest's media description.
const (
	MaxRenditions        = 1024
	MaxSegmentDurationMs = 24 * 60 * 60 * 1000
	MaxMediaFieldLen     = 255 // rendition IDs, codecs, resolution
)

// Media says that a content is a streaming presentation (an HLS or DASH
// output) and what is in it, so receivers and gateways can tell renditions
// and segments apart without parsing the playlists. Every path names a file
// of the same content.
type Media struct {
	Kind       string      `json:"kind"`  // MediaHLS or MediaDASH
	Entry      string      `json:"entry"` // HLS master (or only media) playlist, or DASH MPD
	Renditions []Rendition `json:"renditions"`
}

// Rendition is one encoding of the presentation: an HLS media playlist or a
// DASH representation.
type Rendition struct {
	ID         string         `json:"id"`                 // HLS: its playlist path; DASH: the Representation id
	Playlist   string         `json:"playlist,omitempty"` // HLS media playlist
	Bandwidth  int64          `json:"bandwidth,omitempty"`
	Codecs     string         `json:"codecs,omitempty"`
	Resolution string         `json:"resolution,omitempty"` // "WxH"
	Init       string         `json:"init,omitempty"`       // initialization segment
	Segments   []MediaSegment `json:"segments"`
}

// MediaSegment is one media segment of a rendition.
type MediaSegment struct {
	Path       string `json:"path"`
	DurationMs int64  `json:"duration_ms"`
	Seq        int64  `json:"seq"` // HLS media sequence number, DASH $Number$; increasing
}

// validate checks m against the content's file set.
func (m *Media) validate(files map[string]bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: media: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	isFile := func(what, p string) error {
		if files[p] {
			return nil // a file's path: checked with the files
		}
		if err := CheckPath(p); err != nil {
			return fmt.Errorf("media %s: %w", what, err)
		}
		return bad("%s %q is not a file of the content", what, p)
	}
	if m.Kind != MediaHLS && m.Kind != MediaDASH {
		return bad("kind %q, want %q or %q", m.Kind, MediaHLS, MediaDASH)
	}
	if err := isFile("entry", m.Entry); err != nil {
		return err
	}
	if len(m.Renditions) == 0 || len(m.Renditions) > MaxRenditions {
		return bad("%d renditions, want 1 to %d", len(m.Renditions), MaxRenditions)
	}
	ids := make(map[string]bool, len(m.Renditions))
	segs := 0
	for i, r := range m.Renditions {
		if r.ID == "" || len(r.ID) > MaxPathLen || !printableText(r.ID) || ids[r.ID] {
			return bad("rendition %d: id %q empty, too long, not printable UTF-8 or repeated", i, r.ID)
		}
		ids[r.ID] = true
		if (m.Kind == MediaHLS) != (r.Playlist != "") {
			return bad("rendition %s: an HLS rendition has a playlist and a DASH one has none", r.ID)
		}
		if r.Playlist != "" {
			if err := isFile("playlist", r.Playlist); err != nil {
				return err
			}
		}
		if r.Init != "" {
			if err := isFile("init segment", r.Init); err != nil {
				return err
			}
		}
		if r.Bandwidth < 0 {
			return bad("rendition %s: negative bandwidth", r.ID)
		}
		for _, f := range []string{r.Codecs, r.Resolution} {
			if len(f) > MaxMediaFieldLen || !printableASCII(f) {
				return bad("rendition %s: codecs or resolution not printable ASCII of at most %d bytes", r.ID, MaxMediaFieldLen)
			}
		}
		if r.Resolution != "" {
			w, h, ok := strings.Cut(r.Resolution, "x")
			if !ok || !digits(w) || !digits(h) {
				return bad("rendition %s: resolution %q, want WxH", r.ID, r.Resolution)
			}
		}
		if segs += len(r.Segments); segs > MaxFiles {
			return fmt.Errorf("%w: media: more than %d segments", ErrTooLarge, MaxFiles)
		}
		for j, s := range r.Segments {
			if err := isFile("segment", s.Path); err != nil {
				return err
			}
			if s.DurationMs <= 0 || s.DurationMs > MaxSegmentDurationMs {
				return bad("rendition %s segment %d: duration %d ms out of range 1..%d", r.ID, j, s.DurationMs, MaxSegmentDurationMs)
			}
			if s.Seq < 0 || j > 0 && s.Seq <= r.Segments[j-1].Seq {
				return bad("rendition %s segment %d: sequence number %d not increasing", r.ID, j, s.Seq)
			}
		}
	}
	return nil
}

func printableText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	if s == "" || len(s) > 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
