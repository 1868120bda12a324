package media

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const mpdHead = `<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT5S">
`

func TestParseMPDForms(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		uris  []string
		durs  []time.Duration
		init  string
		seqs  []int64
		codec string
	}{
		{
			name: "template with duration",
			body: `<Period><AdaptationSet codecs="avc1" mimeType="video/mp4"><SegmentTemplate timescale="1000" duration="2000" startNumber="0" media="$RepresentationID$/$Number%03d$.m4s" initialization="$RepresentationID$/init-$Bandwidth$.mp4"/>
<Representation id="hd" bandwidth="500"/></AdaptationSet></Period>`,
			uris:  []string{"hd/000.m4s", "hd/001.m4s", "hd/002.m4s"},
			durs:  []time.Duration{2 * time.Second, 2 * time.Second, time.Second},
			init:  "hd/init-500.mp4",
			seqs:  []int64{0, 1, 2},
			codec: "avc1",
		},
		{
			name: "timeline with time and r=-1",
			body: `<Period><AdaptationSet><Representation id="a" bandwidth="1" codecs="mp4a"><SegmentTemplate timescale="10" media="t$Time$-$$.m4s">
<SegmentTimeline><S t="0" d="15" r="1"/><S d="10" r="-1"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period>`,
			uris:  []string{"t0-$.m4s", "t15-$.m4s", "t30-$.m4s", "t40-$.m4s"},
			durs:  []time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond, time.Second, time.Second},
			seqs:  []int64{1, 2, 3, 4},
			codec: "mp4a",
		},
		{
			name: "segment list",
			body: `<Period><AdaptationSet><Representation id="r" bandwidth="9"><SegmentList timescale="90000" duration="180000">
<Initialization sourceURL="i.mp4"/><SegmentURL media="s1.m4s"/><SegmentURL media="s2.m4s"/></SegmentList></Representation></AdaptationSet></Period>`,
			uris: []string{"s1.m4s", "s2.m4s"},
			durs: []time.Duration{2 * time.Second, 2 * time.Second},
			init: "i.mp4",
			seqs: []int64{1, 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMPD("m.mpd", strings.NewReader(mpdHead+tc.body+"</MPD>"))
			if err != nil {
				t.Fatal(err)
			}
			r := m.AdaptationSets[0].Representations[0]
			if r.Init != tc.init || r.Codecs != tc.codec || len(r.Segments) != len(tc.uris) {
				t.Fatalf("representation %+v", r)
			}
			for i, s := range r.Segments {
				if s.URI != tc.uris[i] || s.Duration != tc.durs[i] || s.Seq != tc.seqs[i] || s.Init != tc.init {
					t.Fatalf("segment %d: %+v", i, s)
				}
			}
		})
	}
}

func TestMalformedMPDNamesFileAndLine(t *testing.T) {
	rep := func(inner string) string {
		return mpdHead + "<Period>\n<AdaptationSet>\n" + inner + "\n</AdaptationSet>\n</Period>\n</MPD>"
	}
	const tmpl = `<SegmentTemplate media="$Number$.m4s" duration="2"/>`
	for _, tc := range []struct {
		name, in string
		want     error
		pos      string
	}{
		{"not xml", "hello", ErrMalformed, "m.mpd:1:"},
		{"wrong root", "<?xml version=\"1.0\"?>\n<HTML/>", ErrMalformed, "m.mpd:2:"},
		{"unclosed", mpdHead + "<Period>\n<AdaptationSet>\n", ErrMalformed, "m.mpd:5:"},
		{"no period", mpdHead + "</MPD>", ErrMalformed, "m.mpd:2:"},
		{"two periods", mpdHead + "<Period/>\n\n<Period/></MPD>", ErrUnsupported, "m.mpd:5:"},
		{"bad duration", strings.Replace(rep(`<Representation id="a" bandwidth="1">`+tmpl+`</Representation>`), "PT5S", "P1Y", 1), ErrMalformed, "m.mpd:2:"},
		{"no bandwidth", rep(`<Representation id="a">` + tmpl + `</Representation>`), ErrMalformed, "m.mpd:5:"},
		{"no id", rep(`<Representation bandwidth="1">` + tmpl + `</Representation>`), ErrMalformed, "m.mpd:5:"},
		{"duplicate id", rep(`<Representation id="a" bandwidth="1">` + tmpl + "</Representation>\n" + `<Representation id="a" bandwidth="1">` + tmpl + `</Representation>`), ErrMalformed, "m.mpd:6:"},
		{"no segments", rep(`<Representation id="a" bandwidth="1"/>`), ErrMalformed, "m.mpd:5:"},
		{"unknown identifier", rep(`<Representation id="a" bandwidth="1">` + "\n" + `<SegmentTemplate media="$Foo$.m4s" duration="2"/></Representation>`), ErrMalformed, "m.mpd:6:"},
		{"bad format", rep(`<Representation id="a" bandwidth="1"><SegmentTemplate media="$Number%5x$.m4s" duration="2"/></Representation>`), ErrMalformed, "m.mpd:5:"},
		{"S without d", rep(`<Representation id="a" bandwidth="1"><SegmentTemplate media="$Number$">` + "\n<SegmentTimeline>\n" + `<S t="0"/></SegmentTimeline></SegmentTemplate></Representation>`), ErrMalformed, "m.mpd:7:"},
		{"timescale 0", rep(`<Representation id="a" bandwidth="1"><SegmentTemplate timescale="0" media="$Number$" duration="2"/></Representation>`), ErrMalformed, "m.mpd:5:"},
		{"base url", rep(`<Representation id="a" bandwidth="1"><BaseURL>http://x/</BaseURL>` + tmpl + `</Representation>`), ErrUnsupported, "m.mpd:5:"},
		{"segment base", rep(`<Representation id="a" bandwidth="1"><SegmentBase indexRange="0-9"/></Representation>`), ErrUnsupported, "m.mpd:5:"},
		{"media range", rep(`<Representation id="a" bandwidth="1"><SegmentList duration="2">` + "\n" + `<SegmentURL media="a" mediaRange="0-9"/></SegmentList></Representation>`), ErrUnsupported, "m.mpd:6:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMPD("m.mpd", strings.NewReader(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.pos) {
				t.Fatalf("error %q does not start with %q", err, tc.pos)
			}
		})
	}
}

func TestISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT6.0S": 6 * time.Second, "PT1M6.5S": 66500 * time.Millisecond, "P1DT1H": 25 * time.Hour, "PT0S": 0,
	} {
		if d, err := parseISODuration(in); err != nil || d != want {
			t.Errorf("%s: %v %v", in, d, err)
		}
	}
	for _, bad := range []string{"", "P", "PT", "T5S", "P1Y", "P1M", "PT5", "PT5X", "PT1.5.5S", "PT99999999999H"} {
		if _, err := parseISODuration(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
