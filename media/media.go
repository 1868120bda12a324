// Package media is Shoal's streaming engine: it parses HLS master and media
// playlists and DASH MPDs into plain structs, and writes HLS playlists back in
// one canonical form. It is pure (bytes or readers in, structs out, no file
// or network I/O) so the publisher, the gateway that rewrites playlists and
// maps segment requests to chunks, and live ingest may all import it.
//
// The parsers are strict about what they accept because a published
// playlist is re-served to players: every tag and attribute that changes how
// a segment must be fetched or decoded is either modelled or refused as
// unsupported, and every error names the file and line ("FILE:LINE: what").
package media

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"
)

// Errors; each is wrapped with "FILE:LINE: what".
var (
	// ErrMalformed means the input is not a valid playlist or MPD.
	ErrMalformed = errors.New("malformed media description")
	// ErrUnsupported means the input is valid but uses a feature Shoal does
	// not model (encryption, byte ranges, absolute URIs, several periods…).
	ErrUnsupported = errors.New("unsupported media feature")
)

// Limits on what the parsers accept.
const (
	MaxInputSize       = 16 << 20 // bytes of one playlist or MPD
	MaxLineLen         = 64 << 10 // bytes of one HLS line
	MaxSegments        = 1 << 20  // segments of one playlist or representation
	MaxVariants        = 1024     // variants + renditions of one master, representations of one MPD
	MaxSegmentDuration = 24 * time.Hour
)

// Segment is one media segment of an HLS media playlist or a DASH
// representation.
type Segment struct {
	URI      string        // as written in the playlist (HLS) or expanded from the template (DASH)
	Duration time.Duration // > 0
	Seq      int64         // HLS media sequence number; DASH $Number$
	// Init is the URI of the initialization section in effect for this
	// segment (HLS EXT-X-MAP, DASH Initialization); "" if none.
	Init string
	// Discontinuity marks an HLS EXT-X-DISCONTINUITY before this segment.
	Discontinuity bool
	Title         string // HLS EXTINF title
	Time          int64  // DASH $Time$ in timescale units; 0 for HLS
}

// TotalDuration is the sum of the segments' durations.
func TotalDuration(segs []Segment) time.Duration {
	var d time.Duration
	for _, s := range segs {
		d += s.Duration
	}
	return d
}

// Resolve turns a URI found in the playlist or MPD at base (a slash-separated
// path inside a content) into the path of the file it names in the same
// content. Only relative references without query or fragment are accepted:
// a published content must be self-contained.
func Resolve(base, uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("%w: URI %q: %v", ErrMalformed, uri, err)
	}
	switch {
	case u.Scheme != "" || u.Host != "" || u.Opaque != "":
		return "", fmt.Errorf("%w: absolute URI %q (a published content must be self-contained)", ErrUnsupported, uri)
	case strings.HasPrefix(u.Path, "/"):
		return "", fmt.Errorf("%w: root-relative URI %q", ErrUnsupported, uri)
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(uri, "?#"):
		return "", fmt.Errorf("%w: URI %q has a query or fragment", ErrUnsupported, uri)
	case u.Path == "":
		return "", fmt.Errorf("%w: empty URI", ErrMalformed)
	}
	p := path.Join(path.Dir(base), u.Path)
	if p == ".." || strings.HasPrefix(p, "../") || p == "." {
		return "", fmt.Errorf("%w: URI %q escapes the content", ErrMalformed, uri)
	}
	return p, nil
}

// errAt wraps sentinel with the position "file:line: ".
func errAt(file string, line int, sentinel error, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %w: %s", file, line, sentinel, fmt.Sprintf(format, args...))
}
