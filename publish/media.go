package publish

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media"
)

// detectMedia recognises an HLS output (one master playlist, or a single
// media playlist) or a DASH output (one MPD) among the inputs and describes
// it for the manifest, with the files of its audio-only renditions (their
// MP4 segments are audio/mp4, not video/mp4). It returns nil when there is
// no playlist or MPD. A playlist that does not parse, or names a file that
// is not published, fails the publish: serving it would break every player.
func detectMedia(inputs []input) (*manifest.Media, map[string]bool, error) {
	d := &mediaDesc{audio: map[string]bool{}}
	md, err := d.detect(inputs)
	return md, d.audio, err
}

func (d *mediaDesc) detect(inputs []input) (*manifest.Media, error) {
	byPath := make(map[string]input, len(inputs))
	var masters, playlists, mpds []input
	for _, in := range inputs {
		byPath[in.path] = in
		switch strings.ToLower(path.Ext(in.path)) {
		case ".m3u8", ".m3u":
			b, err := readSmall(in)
			if err != nil {
				return nil, err
			}
			if media.IsMaster(b) {
				masters = append(masters, in)
			} else {
				playlists = append(playlists, in)
			}
		case ".mpd":
			mpds = append(mpds, in)
		}
	}
	d.files = byPath
	switch hls := len(masters) + len(playlists); {
	case hls == 0 && len(mpds) == 0:
		return nil, nil
	case hls > 0 && len(mpds) > 0:
		return nil, fmt.Errorf("%w: both HLS playlists and a DASH MPD (%s): publish them as separate contents", ErrInput, mpds[0].path)
	case len(mpds) > 1:
		return nil, fmt.Errorf("%w: %d DASH MPDs (%s, %s…): publish one presentation per content", ErrInput, len(mpds), mpds[0].path, mpds[1].path)
	case len(mpds) == 1:
		return d.dash(mpds[0])
	case len(masters) > 1:
		return nil, fmt.Errorf("%w: %d HLS master playlists (%s, %s…): publish one presentation per content", ErrInput, len(masters), masters[0].path, masters[1].path)
	case len(masters) == 1:
		return d.hlsMaster(masters[0])
	case len(playlists) > 1:
		return nil, fmt.Errorf("%w: %d HLS media playlists (%s, %s…) and no master playlist to tie them together", ErrInput, len(playlists), playlists[0].path, playlists[1].path)
	}
	md := &manifest.Media{Kind: manifest.MediaHLS, Entry: playlists[0].path}
	if err := d.hlsRendition(md, playlists[0].path, media.Variant{}, false); err != nil {
		return nil, err
	}
	return md, nil
}

// mediaDesc builds one media description.
type mediaDesc struct {
	files map[string]input
	audio map[string]bool // paths of the files of audio-only renditions
}

func readSmall(in input) ([]byte, error) {
	if in.size > media.MaxInputSize {
		return nil, fmt.Errorf("%w: %s: %d bytes is too large for a playlist (at most %d)", ErrInput, in.path, in.size, media.MaxInputSize)
	}
	f, err := os.Open(in.src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, media.MaxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInput, in.path, err)
	}
	return b, nil
}

// file resolves uri, found in the playlist or MPD at base, to a published
// file.
func (d *mediaDesc) file(base, uri string) (string, error) {
	p, err := media.Resolve(base, uri)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrInput, base, err)
	}
	if _, ok := d.files[p]; !ok {
		return "", fmt.Errorf("%w: %s names %q, which is not among the published files", ErrInput, base, uri)
	}
	return p, nil
}

func (d *mediaDesc) hlsMaster(in input) (*manifest.Media, error) {
	b, err := readSmall(in)
	if err != nil {
		return nil, err
	}
	m, err := media.ParseMaster(in.path, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	md := &manifest.Media{Kind: manifest.MediaHLS, Entry: in.path}
	for _, v := range m.Variants {
		if err := d.hlsRendition(md, in.path, v, audioCodecs(v.Codecs)); err != nil {
			return nil, err
		}
	}
	for _, r := range m.Renditions {
		if r.URI == "" {
			continue // carried in the variants' own streams
		}
		if err := d.hlsRendition(md, in.path, media.Variant{URI: r.URI}, r.Type == "AUDIO"); err != nil {
			return nil, err
		}
	}
	return md, nil
}

// hlsRendition adds the media playlist v.URI (relative to base) once;
// audio says it carries audio only.
func (d *mediaDesc) hlsRendition(md *manifest.Media, base string, v media.Variant, audio bool) error {
	pl := base
	if v.URI != "" {
		var err error
		if pl, err = d.file(base, v.URI); err != nil {
			return err
		}
	}
	for _, r := range md.Renditions {
		if r.Playlist == pl {
			return nil // several variants may share a playlist
		}
	}
	b, err := readSmall(d.files[pl])
	if err != nil {
		return err
	}
	p, err := media.ParseMediaPlaylist(pl, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	r := manifest.Rendition{ID: pl, Playlist: pl, Bandwidth: v.Bandwidth, Codecs: v.Codecs, Resolution: v.Resolution}
	if r.Segments, r.Init, err = d.segments(pl, p.Segments); err != nil {
		return err
	}
	if audio {
		d.markAudio(r)
	}
	md.Renditions = append(md.Renditions, r)
	return nil
}

func (d *mediaDesc) dash(in input) (*manifest.Media, error) {
	b, err := readSmall(in)
	if err != nil {
		return nil, err
	}
	m, err := media.ParseMPD(in.path, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	md := &manifest.Media{Kind: manifest.MediaDASH, Entry: in.path}
	for _, as := range m.AdaptationSets {
		for _, rep := range as.Representations {
			r := manifest.Rendition{ID: rep.ID, Bandwidth: rep.Bandwidth, Codecs: rep.Codecs}
			if rep.Width > 0 && rep.Height > 0 {
				r.Resolution = fmt.Sprintf("%dx%d", rep.Width, rep.Height)
			}
			if r.Segments, r.Init, err = d.segments(in.path, rep.Segments); err != nil {
				return nil, err
			}
			if as.ContentType == "audio" || strings.HasPrefix(rep.MimeType, "audio/") {
				d.markAudio(r)
			}
			md.Renditions = append(md.Renditions, r)
		}
	}
	return md, nil
}

// segments resolves a rendition's segments and its one initialization
// segment.
func (d *mediaDesc) segments(base string, segs []media.Segment) ([]manifest.MediaSegment, string, error) {
	out := make([]manifest.MediaSegment, 0, len(segs))
	initURI := ""
	for i, s := range segs {
		if i > 0 && s.Init != initURI {
			return nil, "", fmt.Errorf("%w: %s: %w: initialization section changes at segment %d", ErrInput, base, media.ErrUnsupported, i)
		}
		initURI = s.Init
		p, err := d.file(base, s.URI)
		if err != nil {
			return nil, "", err
		}
		out = append(out, manifest.MediaSegment{Path: p, DurationMs: durationMs(s.Duration), Seq: s.Seq})
	}
	init := ""
	if initURI != "" {
		var err error
		if init, err = d.file(base, initURI); err != nil {
			return nil, "", err
		}
	}
	return out, init, nil
}

// durationMs rounds to the nearest millisecond, at least 1: a segment is
// never without duration.
func durationMs(d time.Duration) int64 {
	return max(1, int64((d+time.Millisecond/2)/time.Millisecond))
}

// markAudio records the files of an audio-only rendition.
func (d *mediaDesc) markAudio(r manifest.Rendition) {
	if r.Init != "" {
		d.audio[r.Init] = true
	}
	for _, s := range r.Segments {
		d.audio[s.Path] = true
	}
}

// audioCodecs reports whether an HLS CODECS list names audio codecs only.
func audioCodecs(codecs string) bool {
	if codecs == "" {
		return false
	}
	for c := range strings.SplitSeq(codecs, ",") {
		switch c, _, _ = strings.Cut(strings.TrimSpace(c), "."); c {
		case "mp4a", "ac-3", "ec-3", "ac-4", "opus", "fLaC", "flac", "alac":
		default:
			return false
		}
	}
	return true
}
