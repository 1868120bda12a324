package media

import (
	"encoding/xml"
	"fmt"
)

// The xml* types mirror the parts of the MPD schema Shoal reads. Optional
// numeric attributes are *string so that inheritance can tell "absent" from
// "zero", and each element records the input offset of its start tag so
// errors can name the line.

type xMPD struct {
	off      int64
	Type     string    `xml:"type,attr"`
	Duration string    `xml:"mediaPresentationDuration,attr"`
	BaseURL  []string  `xml:"BaseURL"`
	Periods  []xPeriod `xml:"Period"`
}

type xPeriod struct {
	off             int64
	Start           string           `xml:"start,attr"`
	Duration        string           `xml:"duration,attr"`
	BaseURL         []string         `xml:"BaseURL"`
	SegmentBase     *struct{}        `xml:"SegmentBase"`
	SegmentList     *xList           `xml:"SegmentList"`
	SegmentTemplate *xTemplate       `xml:"SegmentTemplate"`
	AdaptationSets  []xAdaptationSet `xml:"AdaptationSet"`
}

type xAdaptationSet struct {
	off             int64
	ID              string            `xml:"id,attr"`
	ContentType     string            `xml:"contentType,attr"`
	MimeType        string            `xml:"mimeType,attr"`
	Codecs          string            `xml:"codecs,attr"`
	BaseURL         []string          `xml:"BaseURL"`
	SegmentBase     *struct{}         `xml:"SegmentBase"`
	SegmentList     *xList            `xml:"SegmentList"`
	SegmentTemplate *xTemplate        `xml:"SegmentTemplate"`
	Reps            []xRepresentation `xml:"Representation"`
}

type xRepresentation struct {
	off             int64
	ID              string     `xml:"id,attr"`
	Bandwidth       string     `xml:"bandwidth,attr"`
	Codecs          string     `xml:"codecs,attr"`
	MimeType        string     `xml:"mimeType,attr"`
	Width           string     `xml:"width,attr"`
	Height          string     `xml:"height,attr"`
	BaseURL         []string   `xml:"BaseURL"`
	SegmentBase     *struct{}  `xml:"SegmentBase"`
	SegmentList     *xList     `xml:"SegmentList"`
	SegmentTemplate *xTemplate `xml:"SegmentTemplate"`
}

type xTemplate struct {
	off            int64
	Media          *string    `xml:"media,attr"`
	Initialization *string    `xml:"initialization,attr"`
	StartNumber    *string    `xml:"startNumber,attr"`
	Timescale      *string    `xml:"timescale,attr"`
	Duration       *string    `xml:"duration,attr"`
	PTO            *string    `xml:"presentationTimeOffset,attr"`
	Timeline       *xTimeline `xml:"SegmentTimeline"`
}

type xTimeline struct {
	S []xS `xml:"S"`
}

type xS struct {
	off int64
	T   *string `xml:"t,attr"`
	D   *string `xml:"d,attr"`
	R   *string `xml:"r,attr"`
}

type xList struct {
	off         int64
	Timescale   *string    `xml:"timescale,attr"`
	Duration    *string    `xml:"duration,attr"`
	StartNumber *string    `xml:"startNumber,attr"`
	Init        *xInit     `xml:"Initialization"`
	Timeline    *xTimeline `xml:"SegmentTimeline"`
	URLs        []xSegURL  `xml:"SegmentURL"`
}

type xInit struct {
	SourceURL string `xml:"sourceURL,attr"`
	Range     string `xml:"range,attr"`
}

type xSegURL struct {
	off        int64
	Media      string `xml:"media,attr"`
	MediaRange string `xml:"mediaRange,attr"`
}

// Each UnmarshalXML records where the element's start tag ends, then decodes
// the element through a method-less alias.

func (x *xMPD) UnmarshalXML(d *xml.Decoder, s xml.StartElement) error {
	if s.Name.Local != "MPD" {
		return fmt.Errorf("root element <%s>, want <MPD>", s.Name.Local)
	}
	type plain xMPD
	x.off = d.InputOffset()
	return d.DecodeElement((*plain)(x), &s)
}

func (x *xPeriod) UnmarshalXML(d *xml.Decoder, s xml.StartElement) error {
	type plain xPeriod
	x.off = d.InputOffset()
	return d.DecodeElement((*plain)(x), &s)
}

func (x *xAdaptationSet) UnmarshalXML(d *xml.Decoder, s xml.StartElement) error {
	type plain xAdaptationSet
	x.off = d.InputOffset()
	return d.DecodeElement((*plain)(x), &s)
}

func (x *xRepresentation) UnmarshalXML(d *xml.Decoder, s xml.StartElement) error {
	type plain xRepresentation
	x.off = d.InputOffset()
	return d.DecodeElement((*plain)(x), &s)
}

func (x *xTemplate) UnmarshalXML(d *xml.Decoder, s xml.StartElement) error {
	type plain xTemplate
	x.off = d.InputOffset()
	return d.DecodeElement((*plain)(x), &s)
}

func (x *xS) UnmarshalXML(d *xml.Decoder, s xml.StartElement) error {
	type plain xS
	x.off = d.InputOffset()
	return d.DecodeElement((*plain)(x), &s)
}

func (x *xList) UnmarshalXML(d *xml.Decoder, s xml.StartElement) error {
	type plain xList
	x.off = d.InputOffset()
	return d.DecodeElement((*plain)(x), &s)
}

func (x *xSegURL) UnmarshalXML(d *xml.Decoder, s xml.StartElement) error {
	type plain xSegURL
	x.off = d.InputOffset()
	return d.DecodeElement((*plain)(x), &s)
}
