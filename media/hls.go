package media

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// MediaPlaylist is an HLS media playlist: the segments of one rendition.
type MediaPlaylist struct {
	Version               int
	TargetDuration        int64 // seconds; every segment's duration rounds to at most this
	MediaSequence         int64 // sequence number of the first segment
	DiscontinuitySequence int64
	Type                  string // "", "VOD" or "EVENT"
	IndependentSegments   bool
	Ended                 bool // EXT-X-ENDLIST: no segment will be added
	Segments              []Segment
}

// Master is an HLS master (multivariant) playlist.
type Master struct {
	Version             int
	IndependentSegments bool
	Renditions          []Rendition // EXT-X-MEDIA, in order
	Variants            []Variant   // EXT-X-STREAM-INF, in order
}

// Variant is one EXT-X-STREAM-INF entry of a master playlist.
type Variant struct {
	URI        string // the media playlist
	Bandwidth  int64  // bits per second, peak
	Codecs     string // "" if not given
	Resolution string // "WxH", "" if not given
	Other      []Attr // further attributes (AVERAGE-BANDWIDTH, FRAME-RATE, AUDIO…), kept as written
}

// Rendition is one EXT-X-MEDIA entry of a master playlist.
type Rendition struct {
	Type    string // AUDIO, VIDEO, SUBTITLES or CLOSED-CAPTIONS
	GroupID string
	Name    string
	URI     string // the media playlist; "" when carried in the variant's stream
	Other   []Attr // further attributes (LANGUAGE, DEFAULT, CHANNELS…), kept as written
}

// hlsLines reads a playlist line by line, counting lines for errors.
type hlsLines struct {
	name string
	sc   *bufio.Scanner
	n    int // number of the line last returned
}

func newHLSLines(name string, r io.Reader) (*hlsLines, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > MaxInputSize {
		return nil, errAt(name, 1, ErrMalformed, "playlist larger than %d bytes", MaxInputSize)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), MaxLineLen)
	l := &hlsLines{name: name, sc: sc}
	line, ok, err := l.next()
	if err != nil {
		return nil, err
	}
	if !ok || line != "#EXTM3U" {
		return nil, l.errf(ErrMalformed, "playlist must start with #EXTM3U")
	}
	return l, nil
}

// next returns the next non-blank line, trimmed, or ok false at the end.
func (l *hlsLines) next() (line string, ok bool, err error) {
	for l.sc.Scan() {
		l.n++
		line = strings.TrimSpace(l.sc.Text())
		if line == "" {
			continue
		}
		if !printable(line) {
			return "", false, l.errf(ErrMalformed, "control character or invalid UTF-8")
		}
		return line, true, nil
	}
	if err := l.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return "", false, errAt(l.name, l.n+1, ErrMalformed, "line longer than %d bytes", MaxLineLen)
		}
		return "", false, fmt.Errorf("%s: %w", l.name, err)
	}
	return "", false, nil
}

func (l *hlsLines) errf(sentinel error, format string, args ...any) error {
	return errAt(l.name, max(l.n, 1), sentinel, format, args...)
}

// splitTag splits "#EXT-X-NAME:value" into its name and value.
func splitTag(line string) (tag, value string, hasValue bool) {
	return strings.Cut(line, ":")
}

// masterTags and mediaTags tell the two kinds of playlist apart.
var (
	masterTags = map[string]bool{"#EXT-X-STREAM-INF": true, "#EXT-X-MEDIA": true, "#EXT-X-I-FRAME-STREAM-INF": true, "#EXT-X-SESSION-DATA": true, "#EXT-X-SESSION-KEY": true, "#EXT-X-CONTENT-STEERING": true}
	mediaTags  = map[string]bool{"#EXTINF": true, "#EXT-X-TARGETDURATION": true, "#EXT-X-MEDIA-SEQUENCE": true, "#EXT-X-DISCONTINUITY-SEQUENCE": true, "#EXT-X-PLAYLIST-TYPE": true, "#EXT-X-ENDLIST": true, "#EXT-X-MAP": true, "#EXT-X-DISCONTINUITY": true, "#EXT-X-BYTERANGE": true, "#EXT-X-KEY": true, "#EXT-X-PROGRAM-DATE-TIME": true, "#EXT-X-I-FRAMES-ONLY": true, "#EXT-X-PART": true, "#EXT-X-GAP": true}
)

// IsMaster reports whether b looks like an HLS master playlist rather than a
// media playlist: it has a line starting with a master-only tag.
func IsMaster(b []byte) bool {
	for line := range bytes.Lines(b) {
		tag, _, _ := splitTag(string(bytes.TrimSpace(line)))
		if masterTags[tag] {
			return true
		}
	}
	return false
}

// ParseMediaPlaylist parses an HLS media playlist read from r; name is the
// file name used in errors.
func ParseMediaPlaylist(name string, r io.Reader) (*MediaPlaylist, error) {
	l, err := newHLSLines(name, r)
	if err != nil {
		return nil, err
	}
	p := &MediaPlaylist{}
	seen := map[string]bool{}
	var (
		pending       *Segment // after EXTINF, waiting for its URI
		init          string   // EXT-X-MAP in effect
		discontinuity bool
	)
	once := func(tag string) error {
		if seen[tag] {
			return l.errf(ErrMalformed, "%s appears twice", tag)
		}
		seen[tag] = true
		if len(p.Segments) > 0 || pending != nil {
			return l.errf(ErrMalformed, "%s after the first segment", tag)
		}
		return nil
	}
	for {
		line, ok, err := l.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if p.Ended {
			return nil, l.errf(ErrMalformed, "content after #EXT-X-ENDLIST")
		}
		if !strings.HasPrefix(line, "#") {
			if pending == nil {
				return nil, l.errf(ErrMalformed, "URI %q without a preceding #EXTINF", line)
			}
			pending.URI = line
			if len(p.Segments) >= MaxSegments {
				return nil, l.errf(ErrMalformed, "more than %d segments", MaxSegments)
			}
			p.Segments = append(p.Segments, *pending)
			pending = nil
			continue
		}
		if !strings.HasPrefix(line, "#EXT") {
			continue // a comment
		}
		tag, val, hasVal := splitTag(line)
		if pending != nil {
			// Only segment tags may sit between EXTINF and the URI, and none
			// that Shoal models goes there.
			return nil, l.errf(ErrMalformed, "%s between #EXTINF and its URI", tag)
		}
		noValue := func() error {
			if hasVal {
				return l.errf(ErrMalformed, "%s takes no value", tag)
			}
			return nil
		}
		intValue := func() (int64, error) {
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 || !allDigits(val) {
				return 0, l.errf(ErrMalformed, "%s: %q is not a decimal integer", tag, val)
			}
			return n, nil
		}
		switch tag {
		case "#EXTM3U":
			return nil, l.errf(ErrMalformed, "#EXTM3U appears twice")
		case "#EXT-X-VERSION":
			if err := once(tag); err != nil {
				return nil, err
			}
			n, err := intValue()
			if err != nil {
				return nil, err
			}
			if n < 1 || n > 12 {
				return nil, l.errf(ErrMalformed, "version %d out of range 1-12", n)
			}
			p.Version = int(n)
		case "#EXT-X-TARGETDURATION":
			if err := once(tag); err != nil {
				return nil, err
			}
			n, err := intValue()
			if err != nil {
				return nil, err
			}
			if n < 1 || time.Duration(n)*time.Second > MaxSegmentDuration {
				return nil, l.errf(ErrMalformed, "target duration %d s out of range", n)
			}
			p.TargetDuration = n
		case "#EXT-X-MEDIA-SEQUENCE":
			if err := once(tag); err != nil {
				return nil, err
			}
			if p.MediaSequence, err = intValue(); err != nil {
				return nil, err
			}
		case "#EXT-X-DISCONTINUITY-SEQUENCE":
			if err := once(tag); err != nil {
				return nil, err
			}
			if p.DiscontinuitySequence, err = intValue(); err != nil {
				return nil, err
			}
		case "#EXT-X-PLAYLIST-TYPE":
			if err := once(tag); err != nil {
				return nil, err
			}
			if val != "VOD" && val != "EVENT" {
				return nil, l.errf(ErrMalformed, "playlist type %q, want VOD or EVENT", val)
			}
			p.Type = val
		case "#EXT-X-INDEPENDENT-SEGMENTS":
			if err := once(tag); err != nil {
				return nil, err
			}
			if err := noValue(); err != nil {
				return nil, err
			}
			p.IndependentSegments = true
		case "#EXT-X-ALLOW-CACHE":
			// Removed from the protocol in version 7; players ignore it.
		case "#EXT-X-ENDLIST":
			if err := noValue(); err != nil {
				return nil, err
			}
			p.Ended = true
		case "#EXT-X-DISCONTINUITY":
			if err := noValue(); err != nil {
				return nil, err
			}
			discontinuity = true
		case "#EXT-X-MAP":
			as, err := parseAttrs(val)
			if err != nil {
				return nil, l.errf(ErrMalformed, "#EXT-X-MAP: %v", err)
			}
			set := attrSet{as}
			uri, ok, err := set.quoted("URI")
			if err != nil || !ok || uri == "" {
				return nil, l.errf(ErrMalformed, "#EXT-X-MAP needs a quoted URI")
			}
			if len(set.attrs) > 0 {
				return nil, l.errf(ErrUnsupported, "#EXT-X-MAP attribute %s", set.attrs[0].Key)
			}
			init = uri
		case "#EXTINF":
			ds, title, _ := strings.Cut(val, ",")
			d, err := parseSeconds(ds)
			if err != nil {
				return nil, l.errf(ErrMalformed, "#EXTINF: %v", err)
			}
			if d <= 0 || d > MaxSegmentDuration {
				return nil, l.errf(ErrMalformed, "#EXTINF: duration %s out of range", ds)
			}
			if !seen["#EXT-X-TARGETDURATION"] {
				return nil, l.errf(ErrMalformed, "#EXTINF before #EXT-X-TARGETDURATION")
			}
			if (d+time.Second/2)/time.Second > time.Duration(p.TargetDuration) {
				return nil, l.errf(ErrMalformed, "#EXTINF: duration %s s exceeds the target duration %d s", ds, p.TargetDuration)
			}
			pending = &Segment{
				Duration:      d,
				Seq:           p.MediaSequence + int64(len(p.Segments)),
				Init:          init,
				Discontinuity: discontinuity,
				Title:         title,
			}
			discontinuity = false
		default:
			if masterTags[tag] {
				return nil, l.errf(ErrMalformed, "master playlist tag %s in a media playlist", tag)
			}
			return nil, l.errf(ErrUnsupported, "tag %s", tag)
		}
	}
	if pending != nil {
		return nil, l.errf(ErrMalformed, "#EXTINF without a URI at the end")
	}
	if !seen["#EXT-X-TARGETDURATION"] {
		return nil, l.errf(ErrMalformed, "no #EXT-X-TARGETDURATION")
	}
	if discontinuity {
		return nil, l.errf(ErrMalformed, "#EXT-X-DISCONTINUITY after the last segment")
	}
	return p, nil
}

// ParseMaster parses an HLS master playlist read from r; name is the file
// name used in errors.
func ParseMaster(name string, r io.Reader) (*Master, error) {
	l, err := newHLSLines(name, r)
	if err != nil {
		return nil, err
	}
	m := &Master{}
	seen := map[string]bool{}
	var pending *Variant
	for {
		line, ok, err := l.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if !strings.HasPrefix(line, "#") {
			if pending == nil {
				return nil, l.errf(ErrMalformed, "URI %q without a preceding #EXT-X-STREAM-INF", line)
			}
			pending.URI = line
			m.Variants = append(m.Variants, *pending)
			pending = nil
			continue
		}
		if !strings.HasPrefix(line, "#EXT") {
			continue
		}
		tag, val, hasVal := splitTag(line)
		if pending != nil {
			return nil, l.errf(ErrMalformed, "%s where the URI of the #EXT-X-STREAM-INF above was expected", tag)
		}
		if len(m.Variants)+len(m.Renditions) >= MaxVariants {
			return nil, l.errf(ErrMalformed, "more than %d variants and renditions", MaxVariants)
		}
		switch tag {
		case "#EXTM3U":
			return nil, l.errf(ErrMalformed, "#EXTM3U appears twice")
		case "#EXT-X-VERSION":
			if seen[tag] {
				return nil, l.errf(ErrMalformed, "%s appears twice", tag)
			}
			seen[tag] = true
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 12 || !allDigits(val) {
				return nil, l.errf(ErrMalformed, "version %q, want an integer 1-12", val)
			}
			m.Version = n
		case "#EXT-X-INDEPENDENT-SEGMENTS":
			if seen[tag] || hasVal {
				return nil, l.errf(ErrMalformed, "%s appears twice or has a value", tag)
			}
			seen[tag] = true
			m.IndependentSegments = true
		case "#EXT-X-STREAM-INF":
			v, err := parseVariant(val)
			if err != nil {
				return nil, l.errf(ErrMalformed, "%s: %v", tag, err)
			}
			pending = v
		case "#EXT-X-MEDIA":
			r, err := parseRendition(val)
			if err != nil {
				return nil, l.errf(ErrMalformed, "%s: %v", tag, err)
			}
			m.Renditions = append(m.Renditions, *r)
		default:
			if mediaTags[tag] {
				return nil, l.errf(ErrMalformed, "media playlist tag %s in a master playlist", tag)
			}
			return nil, l.errf(ErrUnsupported, "tag %s", tag)
		}
	}
	if pending != nil {
		return nil, l.errf(ErrMalformed, "#EXT-X-STREAM-INF without a URI at the end")
	}
	if len(m.Variants) == 0 {
		return nil, l.errf(ErrMalformed, "master playlist without #EXT-X-STREAM-INF")
	}
	return m, nil
}

func parseVariant(val string) (*Variant, error) {
	as, err := parseAttrs(val)
	if err != nil {
		return nil, err
	}
	set := attrSet{as}
	v := &Variant{}
	var ok bool
	if v.Bandwidth, ok, err = set.integer("BANDWIDTH"); err != nil {
		return nil, err
	} else if !ok {
		return nil, errors.New("no BANDWIDTH")
	}
	if v.Codecs, _, err = set.quoted("CODECS"); err != nil {
		return nil, err
	}
	if v.Resolution, _, err = set.enum("RESOLUTION"); err != nil {
		return nil, err
	}
	if v.Resolution != "" {
		w, h, ok := strings.Cut(v.Resolution, "x")
		if !ok || w == "" || h == "" || !allDigits(w) || !allDigits(h) || len(w) > 6 || len(h) > 6 {
			return nil, fmt.Errorf("RESOLUTION %q, want WIDTHxHEIGHT", v.Resolution)
		}
	}
	v.Other = set.attrs
	return v, nil
}

func parseRendition(val string) (*Rendition, error) {
	as, err := parseAttrs(val)
	if err != nil {
		return nil, err
	}
	set := attrSet{as}
	r := &Rendition{}
	var ok bool
	if r.Type, ok, err = set.enum("TYPE"); err != nil {
		return nil, err
	}
	switch r.Type {
	case "AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS":
	default:
		return nil, fmt.Errorf("TYPE %q, want AUDIO, VIDEO, SUBTITLES or CLOSED-CAPTIONS", r.Type)
	}
	if r.GroupID, ok, err = set.quoted("GROUP-ID"); err != nil || !ok {
		return nil, errors.Join(errors.New("needs a quoted GROUP-ID"), err)
	}
	if r.Name, ok, err = set.quoted("NAME"); err != nil || !ok {
		return nil, errors.Join(errors.New("needs a quoted NAME"), err)
	}
	if r.URI, ok, err = set.quoted("URI"); err != nil {
		return nil, err
	} else if ok && (r.URI == "" || r.Type == "CLOSED-CAPTIONS") {
		return nil, errors.New("URI must be non-empty and absent for CLOSED-CAPTIONS")
	}
	r.Other = set.attrs
	return r, nil
}
