package media

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
)

// Encode writes p as a canonical media playlist: header tags in a fixed
// order, EXT-X-MAP only where the initialization section changes, durations
// with the fewest exact decimals. Parsing the result gives p back. It fails
// on values that cannot be written (line breaks, quotes in a quoted value,
// an initialization section dropped mid-playlist), which matters when the
// gateway rewrites URIs.
func (p *MediaPlaylist) Encode() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n")
	if p.Version != 0 {
		fmt.Fprintf(&b, "#EXT-X-VERSION:%d\n", p.Version)
	}
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", p.TargetDuration)
	if p.MediaSequence != 0 {
		fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", p.MediaSequence)
	}
	if p.DiscontinuitySequence != 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", p.DiscontinuitySequence)
	}
	if p.Type != "" {
		fmt.Fprintf(&b, "#EXT-X-PLAYLIST-TYPE:%s\n", p.Type)
	}
	if p.IndependentSegments {
		b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	}
	init := ""
	for i, s := range p.Segments {
		if err := checkLine(s.URI); err != nil {
			return nil, fmt.Errorf("segment %d URI: %w", i, err)
		}
		if err := checkTitle(s.Title); err != nil {
			return nil, fmt.Errorf("segment %d title: %w", i, err)
		}
		if s.Duration <= 0 || s.Duration > MaxSegmentDuration {
			return nil, fmt.Errorf("%w: segment %d duration %v out of range", ErrMalformed, i, s.Duration)
		}
		if s.Discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if s.Init != init {
			if s.Init == "" {
				return nil, fmt.Errorf("%w: segment %d drops the initialization section", ErrMalformed, i)
			}
			if err := checkQuoted(s.Init); err != nil {
				return nil, fmt.Errorf("segment %d init: %w", i, err)
			}
			b.WriteString(`#EXT-X-MAP:URI="` + s.Init + "\"\n")
			init = s.Init
		}
		fmt.Fprintf(&b, "#EXTINF:%s,%s\n%s\n", formatSeconds(s.Duration), s.Title, s.URI)
	}
	if p.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes(), nil
}

// Encode writes m as a canonical master playlist: renditions, then
// variants, known attributes first and the others as they were parsed.
func (m *Master) Encode() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n")
	if m.Version != 0 {
		fmt.Fprintf(&b, "#EXT-X-VERSION:%d\n", m.Version)
	}
	if m.IndependentSegments {
		b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	}
	for i, r := range m.Renditions {
		as := []Attr{{"TYPE", r.Type, false}, {"GROUP-ID", r.GroupID, true}, {"NAME", r.Name, true}}
		as = append(as, r.Other...)
		if r.URI != "" {
			as = append(as, Attr{"URI", r.URI, true})
		}
		if err := writeAttrs(&b, "#EXT-X-MEDIA:", as); err != nil {
			return nil, fmt.Errorf("rendition %d: %w", i, err)
		}
	}
	for i, v := range m.Variants {
		as := []Attr{{"BANDWIDTH", fmt.Sprint(v.Bandwidth), false}}
		if v.Codecs != "" {
			as = append(as, Attr{"CODECS", v.Codecs, true})
		}
		if v.Resolution != "" {
			as = append(as, Attr{"RESOLUTION", v.Resolution, false})
		}
		as = append(as, v.Other...)
		if err := writeAttrs(&b, "#EXT-X-STREAM-INF:", as); err != nil {
			return nil, fmt.Errorf("variant %d: %w", i, err)
		}
		if err := checkLine(v.URI); err != nil {
			return nil, fmt.Errorf("variant %d URI: %w", i, err)
		}
		b.WriteString(v.URI + "\n")
	}
	return b.Bytes(), nil
}

func writeAttrs(b *bytes.Buffer, tag string, as []Attr) error {
	b.WriteString(tag)
	for i, a := range as {
		var err error
		if a.Quoted {
			err = checkQuoted(a.Value)
		} else if a.Value == "" || strings.ContainsAny(a.Value, "\", \t") {
			err = fmt.Errorf("%w: unquoted value %q", ErrMalformed, a.Value)
		}
		if err == nil && !printable(a.Value) {
			err = fmt.Errorf("%w: %q has control characters", ErrMalformed, a.Value)
		}
		if err != nil {
			return fmt.Errorf("attribute %s: %w", a.Key, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.String())
	}
	b.WriteByte('\n')
	return nil
}

// checkLine checks that a URI can be written on a line of its own and read
// back the same: printable, non-empty, no surrounding space, no leading '#'.
func checkLine(s string) error {
	switch {
	case !printable(s):
		return fmt.Errorf("%w: %q has control characters", ErrMalformed, s)
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("%w: %q has surrounding space", ErrMalformed, s)
	case s == "" || s[0] == '#':
		return fmt.Errorf("%w: URI %q is empty or starts with '#'", ErrMalformed, s)
	}
	return nil
}

// checkTitle checks that an EXTINF title survives the line trimming of the
// parser.
func checkTitle(s string) error {
	if !printable(s) || strings.TrimRightFunc(s, unicode.IsSpace) != s {
		return fmt.Errorf("%w: title %q has control characters or trailing space", ErrMalformed, s)
	}
	return nil
}

func checkQuoted(s string) error {
	if strings.ContainsRune(s, '"') || !printable(s) {
		return fmt.Errorf("%w: %q cannot be a quoted string", ErrMalformed, s)
	}
	return nil
}
