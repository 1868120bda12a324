package media

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// MPD is a DASH media presentation with every representation's segments
// listed, whether the MPD wrote them with a SegmentTemplate (with or without
// a SegmentTimeline) or a SegmentList.
type MPD struct {
	Dynamic        bool          // type="dynamic" (live)
	Duration       time.Duration // mediaPresentationDuration; 0 if not given
	AdaptationSets []AdaptationSet
}

// AdaptationSet is a group of interchangeable representations.
type AdaptationSet struct {
	ID              string
	ContentType     string // "video", "audio", "text"… or "" if not given
	MimeType        string
	Representations []Representation
}

// Representation is one encoding of an adaptation set's media.
type Representation struct {
	ID        string
	Bandwidth int64
	Codecs    string // inherited from the adaptation set if not given
	MimeType  string // inherited from the adaptation set if not given
	Width     int
	Height    int
	Init      string // initialization segment URI; "" if none
	Segments  []Segment
}

// ParseMPD parses a DASH MPD read from r; name is the file name used in
// errors. Several periods, BaseURL, SegmentBase and byte ranges are refused
// as unsupported: a published presentation is one period of whole files.
func ParseMPD(name string, r io.Reader) (*MPD, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > MaxInputSize {
		return nil, errAt(name, 1, ErrMalformed, "MPD larger than %d bytes", MaxInputSize)
	}
	p := &mpdParser{name: name, data: b}
	var x xMPD
	dec := xml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&x); err != nil {
		line := p.line(dec.InputOffset())
		if se, ok := err.(*xml.SyntaxError); ok {
			line = se.Line
		}
		return nil, errAt(name, line, ErrMalformed, "%v", err)
	}
	return p.mpd(&x)
}

type mpdParser struct {
	name string
	data []byte
	segs int // segments listed so far, against MaxSegments
}

// line turns a byte offset into a 1-based line number.
func (p *mpdParser) line(off int64) int {
	off = min(max(off, 0), int64(len(p.data)))
	return 1 + bytes.Count(p.data[:off], []byte("\n"))
}

func (p *mpdParser) errf(off int64, sentinel error, format string, args ...any) error {
	return errAt(p.name, p.line(off), sentinel, format, args...)
}

func (p *mpdParser) mpd(x *xMPD) (*MPD, error) {
	m := &MPD{}
	switch x.Type {
	case "", "static":
	case "dynamic":
		m.Dynamic = true
	default:
		return nil, p.errf(x.off, ErrMalformed, "MPD type %q, want static or dynamic", x.Type)
	}
	if x.Duration != "" {
		d, err := parseISODuration(x.Duration)
		if err != nil {
			return nil, p.errf(x.off, ErrMalformed, "mediaPresentationDuration: %v", err)
		}
		m.Duration = d
	}
	if len(x.BaseURL) > 0 {
		return nil, p.errf(x.off, ErrUnsupported, "BaseURL")
	}
	switch {
	case len(x.Periods) == 0:
		return nil, p.errf(x.off, ErrMalformed, "no Period")
	case len(x.Periods) > 1:
		return nil, p.errf(x.Periods[1].off, ErrUnsupported, "more than one Period")
	}
	per := &x.Periods[0]
	if len(per.BaseURL) > 0 || per.SegmentBase != nil || per.SegmentList != nil {
		return nil, p.errf(per.off, ErrUnsupported, "BaseURL, SegmentBase or SegmentList on the Period")
	}
	var start time.Duration
	if per.Start != "" {
		var err error
		if start, err = parseISODuration(per.Start); err != nil {
			return nil, p.errf(per.off, ErrMalformed, "Period start: %v", err)
		}
	}
	// The period's length bounds templates without a timeline and S@r=-1.
	var length time.Duration
	if per.Duration != "" {
		var err error
		if length, err = parseISODuration(per.Duration); err != nil {
			return nil, p.errf(per.off, ErrMalformed, "Period duration: %v", err)
		}
	} else if m.Duration > start {
		length = m.Duration - start
	}
	ids := map[string]bool{}
	nrep := 0
	for i := range per.AdaptationSets {
		xa := &per.AdaptationSets[i]
		if len(xa.BaseURL) > 0 || xa.SegmentBase != nil {
			return nil, p.errf(xa.off, ErrUnsupported, "BaseURL or SegmentBase on an AdaptationSet")
		}
		as := AdaptationSet{ID: xa.ID, ContentType: xa.ContentType, MimeType: xa.MimeType}
		if len(xa.Reps) == 0 {
			return nil, p.errf(xa.off, ErrMalformed, "AdaptationSet without Representation")
		}
		for j := range xa.Reps {
			xr := &xa.Reps[j]
			if nrep++; nrep > MaxVariants {
				return nil, p.errf(xr.off, ErrMalformed, "more than %d representations", MaxVariants)
			}
			rep, err := p.representation(xa, xr, per.SegmentTemplate, length)
			if err != nil {
				return nil, err
			}
			if ids[rep.ID] {
				return nil, p.errf(xr.off, ErrMalformed, "Representation id %q appears twice", rep.ID)
			}
			ids[rep.ID] = true
			as.Representations = append(as.Representations, *rep)
		}
		m.AdaptationSets = append(m.AdaptationSets, as)
	}
	if nrep == 0 {
		return nil, p.errf(per.off, ErrMalformed, "Period without AdaptationSet")
	}
	return m, nil
}

func (p *mpdParser) representation(xa *xAdaptationSet, xr *xRepresentation, perTmpl *xTemplate, length time.Duration) (*Representation, error) {
	if len(xr.BaseURL) > 0 || xr.SegmentBase != nil {
		return nil, p.errf(xr.off, ErrUnsupported, "BaseURL or SegmentBase on a Representation")
	}
	r := &Representation{ID: xr.ID, Codecs: xr.Codecs, MimeType: xr.MimeType}
	if r.ID == "" || strings.ContainsAny(r.ID, " \t\r\n") || !printable(r.ID) {
		return nil, p.errf(xr.off, ErrMalformed, "Representation id %q: must be non-empty without whitespace", r.ID)
	}
	if r.Codecs == "" {
		r.Codecs = xa.Codecs
	}
	if r.MimeType == "" {
		r.MimeType = xa.MimeType
	}
	bw, err := strconv.ParseInt(xr.Bandwidth, 10, 64)
	if err != nil || bw <= 0 {
		return nil, p.errf(xr.off, ErrMalformed, "Representation %s: bandwidth %q is not a positive integer", r.ID, xr.Bandwidth)
	}
	r.Bandwidth = bw
	for _, d := range []struct {
		s   string
		dst *int
	}{{xr.Width, &r.Width}, {xr.Height, &r.Height}} {
		if d.s == "" {
			continue
		}
		n, err := strconv.Atoi(d.s)
		if err != nil || n <= 0 || n > 1<<16 {
			return nil, p.errf(xr.off, ErrMalformed, "Representation %s: width/height %q out of range", r.ID, d.s)
		}
		*d.dst = n
	}
	list := xr.SegmentList
	if list == nil {
		list = xa.SegmentList
	}
	tmpl := mergeTemplates(perTmpl, xa.SegmentTemplate, xr.SegmentTemplate)
	switch {
	case list != nil && tmpl != nil:
		return nil, p.errf(xr.off, ErrMalformed, "Representation %s has both a SegmentList and a SegmentTemplate", r.ID)
	case list != nil:
		err = p.segmentList(r, list)
	case tmpl != nil:
		err = p.segmentTemplate(r, tmpl, length)
	default:
		return nil, p.errf(xr.off, ErrMalformed, "Representation %s has no SegmentTemplate or SegmentList", r.ID)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// mergeTemplates applies DASH inheritance: a lower level's attributes and
// timeline override the levels above it.
func mergeTemplates(levels ...*xTemplate) *xTemplate {
	var out *xTemplate
	for _, t := range levels {
		if t == nil {
			continue
		}
		if out == nil {
			c := *t
			out = &c
			continue
		}
		out.off = t.off
		for _, f := range []struct{ dst, src **string }{
			{&out.Media, &t.Media}, {&out.Initialization, &t.Initialization}, {&out.StartNumber, &t.StartNumber},
			{&out.Timescale, &t.Timescale}, {&out.Duration, &t.Duration}, {&out.PTO, &t.PTO},
		} {
			if *f.src != nil {
				*f.dst = *f.src
			}
		}
		if t.Timeline != nil {
			out.Timeline = t.Timeline
		}
	}
	return out
}

// uintAttr parses an optional non-negative integer attribute.
func (p *mpdParser) uintAttr(off int64, what string, s *string, def, maxVal int64) (int64, error) {
	if s == nil {
		return def, nil
	}
	n, err := strconv.ParseInt(*s, 10, 64)
	if err != nil || n < 0 || n > maxVal {
		return 0, p.errf(off, ErrMalformed, "%s %q is not an integer in 0..%d", what, *s, maxVal)
	}
	return n, nil
}

// ticks converts d timescale units to a duration.
func ticks(d, timescale int64) time.Duration {
	return time.Duration(d/timescale)*time.Second + time.Duration(d%timescale*1e9/timescale)
}

const maxTicks = 1 << 52 // bounds t and d so sums cannot overflow

func (p *mpdParser) segmentTemplate(r *Representation, t *xTemplate, length time.Duration) error {
	if t.Media == nil || *t.Media == "" {
		return p.errf(t.off, ErrMalformed, "SegmentTemplate without media")
	}
	ts, err := p.uintAttr(t.off, "timescale", t.Timescale, 1, 1<<32)
	if err != nil {
		return err
	}
	if ts == 0 {
		return p.errf(t.off, ErrMalformed, "timescale 0")
	}
	number, err := p.uintAttr(t.off, "startNumber", t.StartNumber, 1, 1<<53)
	if err != nil {
		return err
	}
	pto, err := p.uintAttr(t.off, "presentationTimeOffset", t.PTO, 0, maxTicks)
	if err != nil {
		return err
	}
	if t.Initialization != nil {
		if r.Init, err = p.expand(t.off, *t.Initialization, r, 0, 0, false); err != nil {
			return err
		}
	}
	add := func(off, tm, d int64) error {
		seg := Segment{Duration: ticks(d, ts), Seq: number, Init: r.Init, Time: tm}
		if seg.Duration <= 0 || seg.Duration > MaxSegmentDuration {
			return p.errf(off, ErrMalformed, "segment duration %d/%d s out of range", d, ts)
		}
		if p.segs++; p.segs > MaxSegments {
			return p.errf(off, ErrMalformed, "more than %d segments", MaxSegments)
		}
		var err error
		if seg.URI, err = p.expand(t.off, *t.Media, r, number, tm, true); err != nil {
			return err
		}
		r.Segments = append(r.Segments, seg)
		number++
		return nil
	}
	// The period's end in timescale units, in integers: seconds times ts
	// cannot overflow for a bounded length, nor can the remainder's product.
	end := pto + int64(length/time.Second)*ts + int64(length%time.Second)*ts/1e9
	if t.Timeline != nil {
		cur := pto
		if len(t.Timeline.S) == 0 {
			return p.errf(t.off, ErrMalformed, "empty SegmentTimeline")
		}
		for i, s := range t.Timeline.S {
			if s.T != nil {
				tv, err := p.uintAttr(s.off, "S@t", s.T, 0, maxTicks)
				if err != nil {
					return err
				}
				if tv < cur && i > 0 {
					return p.errf(s.off, ErrMalformed, "S@t %d goes back before %d", tv, cur)
				}
				cur = tv
			}
			if s.D == nil {
				return p.errf(s.off, ErrMalformed, "S without d")
			}
			d, err := p.uintAttr(s.off, "S@d", s.D, 0, maxTicks)
			if err != nil {
				return err
			}
			if d == 0 {
				return p.errf(s.off, ErrMalformed, "S@d 0")
			}
			rep := int64(0)
			if s.R != nil {
				if rep, err = strconv.ParseInt(*s.R, 10, 64); err != nil || rep < -1 {
					return p.errf(s.off, ErrMalformed, "S@r %q is not an integer >= -1", *s.R)
				}
			}
			if rep == -1 {
				if i != len(t.Timeline.S)-1 || length <= 0 {
					return p.errf(s.off, ErrUnsupported, "S@r=-1 other than on the last S of a period of known length")
				}
				rep = (end-cur+d-1)/d - 1
			}
			for k := int64(0); k <= rep; k++ {
				if cur > maxTicks {
					return p.errf(s.off, ErrMalformed, "timeline beyond %d ticks", int64(maxTicks))
				}
				if err := add(s.off, cur, d); err != nil {
					return err
				}
				cur += d
			}
		}
		return nil
	}
	d, err := p.uintAttr(t.off, "duration", t.Duration, 0, maxTicks)
	if err != nil {
		return err
	}
	if d == 0 {
		return p.errf(t.off, ErrMalformed, "SegmentTemplate with neither SegmentTimeline nor duration")
	}
	if length <= 0 {
		return p.errf(t.off, ErrMalformed, "SegmentTemplate@duration needs a Period duration or mediaPresentationDuration")
	}
	for cur := pto; cur < end; cur += d {
		if err := add(t.off, cur, min(d, end-cur)); err != nil {
			return err
		}
	}
	return nil
}

func (p *mpdParser) segmentList(r *Representation, l *xList) error {
	if l.Timeline != nil || l.Init != nil && l.Init.Range != "" {
		return p.errf(l.off, ErrUnsupported, "SegmentList with a SegmentTimeline or byte ranges")
	}
	ts, err := p.uintAttr(l.off, "timescale", l.Timescale, 1, 1<<32)
	if err != nil {
		return err
	}
	if ts == 0 {
		return p.errf(l.off, ErrMalformed, "timescale 0")
	}
	number, err := p.uintAttr(l.off, "startNumber", l.StartNumber, 1, 1<<53)
	if err != nil {
		return err
	}
	d, err := p.uintAttr(l.off, "duration", l.Duration, 0, maxTicks)
	if err != nil {
		return err
	}
	if d == 0 {
		return p.errf(l.off, ErrMalformed, "SegmentList without duration")
	}
	if l.Init != nil {
		if l.Init.SourceURL == "" {
			return p.errf(l.off, ErrMalformed, "Initialization without sourceURL")
		}
		r.Init = l.Init.SourceURL
	}
	if len(l.URLs) == 0 {
		return p.errf(l.off, ErrMalformed, "SegmentList without SegmentURL")
	}
	for i, u := range l.URLs {
		if u.MediaRange != "" {
			return p.errf(u.off, ErrUnsupported, "SegmentURL@mediaRange")
		}
		if u.Media == "" {
			return p.errf(u.off, ErrMalformed, "SegmentURL without media")
		}
		seg := Segment{URI: u.Media, Duration: ticks(d, ts), Seq: number + int64(i), Init: r.Init, Time: int64(i) * d}
		if seg.Duration <= 0 || seg.Duration > MaxSegmentDuration {
			return p.errf(l.off, ErrMalformed, "segment duration %d/%d s out of range", d, ts)
		}
		if p.segs++; p.segs > MaxSegments {
			return p.errf(u.off, ErrMalformed, "more than %d segments", MaxSegments)
		}
		r.Segments = append(r.Segments, seg)
	}
	return nil
}

// expand substitutes a SegmentTemplate's identifiers ($RepresentationID$,
// $Number$, $Bandwidth$, $Time$, each number with an optional %0Nd width,
// and $$) in tmpl.
func (p *mpdParser) expand(off int64, tmpl string, r *Representation, number, tm int64, segment bool) (string, error) {
	var b strings.Builder
	rest := tmpl
	for {
		i := strings.IndexByte(rest, '$')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		rest = rest[i+1:]
		j := strings.IndexByte(rest, '$')
		if j < 0 {
			return "", p.errf(off, ErrMalformed, "template %q: unterminated $", tmpl)
		}
		ident, format, hasFormat := strings.Cut(rest[:j], "%")
		rest = rest[j+1:]
		width := 1
		if hasFormat {
			w, ok := strings.CutPrefix(format, "0")
			w, ok2 := strings.CutSuffix(w, "d")
			n, err := strconv.Atoi(w)
			if !ok || !ok2 || err != nil || n < 1 || n > 20 {
				return "", p.errf(off, ErrMalformed, "template %q: bad format %%%s", tmpl, format)
			}
			width = n
		}
		var v int64
		switch ident {
		case "":
			if hasFormat {
				return "", p.errf(off, ErrMalformed, "template %q: bad $$", tmpl)
			}
			b.WriteByte('$')
			continue
		case "RepresentationID":
			if hasFormat {
				return "", p.errf(off, ErrMalformed, "template %q: $RepresentationID$ takes no format", tmpl)
			}
			b.WriteString(r.ID)
			continue
		case "Bandwidth":
			v = r.Bandwidth
		case "Number", "Time":
			if !segment {
				return "", p.errf(off, ErrMalformed, "template %q: $%s$ in an initialization template", tmpl, ident)
			}
			v = number
			if ident == "Time" {
				v = tm
			}
		default:
			return "", p.errf(off, ErrMalformed, "template %q: unknown identifier $%s$", tmpl, ident)
		}
		fmt.Fprintf(&b, "%0*d", width, v)
	}
	if b.Len() > MaxLineLen {
		return "", p.errf(off, ErrMalformed, "template %q expands to more than %d bytes", tmpl, MaxLineLen)
	}
	return b.String(), nil
}
