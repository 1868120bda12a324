package media

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// roundTrip checks parse(encode(p)) == p and that encoding is stable.
func roundTrip(t testing.TB, p *MediaPlaylist) {
	t.Helper()
	enc, err := p.Encode()
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	p2, err := ParseMediaPlaylist("enc", bytes.NewReader(enc))
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, enc)
	}
	if !equalJSON(p, p2) {
		t.Fatalf("parse(encode(p)) != p\n%+v\n%+v\n%s", p, p2, enc)
	}
	enc2, err := p2.Encode()
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("encoding not stable: %v\n%s\n%s", err, enc, enc2)
	}
}

const goodMedia = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-PLAYLIST-TYPE:EVENT
# a comment
#EXT-X-MAP:URI="init0.mp4"
#EXTINF:3.5,first, with a comma
a/seg10.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init1.mp4"
#EXTINF:4.0004,
seg11.m4s
#EXT-X-ENDLIST
`

func TestParseMediaPlaylist(t *testing.T) {
	p, err := ParseMediaPlaylist("x.m3u8", strings.NewReader(goodMedia))
	if err != nil {
		t.Fatal(err)
	}
	want := []Segment{
		{URI: "a/seg10.m4s", Duration: 3500 * time.Millisecond, Seq: 10, Init: "init0.mp4", Title: "first, with a comma"},
		{URI: "seg11.m4s", Duration: 4000400 * time.Microsecond, Seq: 11, Init: "init1.mp4", Discontinuity: true},
	}
	if !equalJSON(p.Segments, want) || p.TargetDuration != 4 || p.MediaSequence != 10 || p.Type != "EVENT" || !p.Ended || p.Version != 7 {
		t.Fatalf("got %+v", p)
	}
	roundTrip(t, p)
}

func TestMalformedPlaylistNamesFileAndLine(t *testing.T) {
	const head = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
	for _, tc := range []struct {
		name, in string
		master   bool
		want     error
		pos      string // "file:line:" the error must start with
	}{
		{"empty", "", false, ErrMalformed, "p.m3u8:1:"},
		{"no header", "#EXTINF:2,\na.ts\n", false, ErrMalformed, "p.m3u8:1:"},
		{"uri without extinf", head + "a.ts\n", false, ErrMalformed, "p.m3u8:3:"},
		{"bad duration", head + "#EXTINF:two,\na.ts\n", false, ErrMalformed, "p.m3u8:3:"},
		{"zero duration", head + "#EXTINF:0,\na.ts\n", false, ErrMalformed, "p.m3u8:3:"},
		{"over target", head + "\n\n#EXTINF:2.6,\na.ts\n", false, ErrMalformed, "p.m3u8:5:"},
		{"no target", "#EXTM3U\n#EXTINF:2,\na.ts\n", false, ErrMalformed, "p.m3u8:2:"},
		{"extinf at end", head + "#EXTINF:2,\n", false, ErrMalformed, "p.m3u8:3:"},
		{"tag before uri", head + "#EXTINF:2,\n#EXT-X-ENDLIST\na.ts\n", false, ErrMalformed, "p.m3u8:4:"},
		{"after endlist", head + "#EXT-X-ENDLIST\n#EXTINF:2,\na.ts\n", false, ErrMalformed, "p.m3u8:4:"},
		{"twice", head + "#EXT-X-TARGETDURATION:3\n", false, ErrMalformed, "p.m3u8:3:"},
		{"bad type", head + "#EXT-X-PLAYLIST-TYPE:LIVE\n", false, ErrMalformed, "p.m3u8:3:"},
		{"map without uri", head + "#EXT-X-MAP:BYTERANGE=\"1@0\"\n", false, ErrMalformed, "p.m3u8:3:"},
		{"map byterange", head + "#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"1@0\"\n", false, ErrUnsupported, "p.m3u8:3:"},
		{"key", head + "#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n", false, ErrUnsupported, "p.m3u8:3:"},
		{"master tag", head + "#EXT-X-STREAM-INF:BANDWIDTH=1\n", false, ErrMalformed, "p.m3u8:3:"},
		{"control char", head + "#EXTINF:2,\na\x01.ts\n", false, ErrMalformed, "p.m3u8:4:"},
		{"long line", head + strings.Repeat("a", MaxLineLen+1) + "\n", false, ErrMalformed, "p.m3u8:3:"},
		{"master empty", "#EXTM3U\n", true, ErrMalformed, "p.m3u8:1:"},
		{"master no bandwidth", "#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"a\"\nv.m3u8\n", true, ErrMalformed, "p.m3u8:2:"},
		{"master bad attr", "#EXTM3U\n\n#EXT-X-STREAM-INF:BANDWIDTH=1,,\nv.m3u8\n", true, ErrMalformed, "p.m3u8:3:"},
		{"master bad resolution", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=big\nv.m3u8\n", true, ErrMalformed, "p.m3u8:2:"},
		{"master unquoted codecs", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=avc1\nv.m3u8\n", true, ErrMalformed, "p.m3u8:2:"},
		{"master no uri", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\nv.m3u8\n", true, ErrMalformed, "p.m3u8:3:"},
		{"master media tag", "#EXTM3U\n#EXTINF:2,\n", true, ErrMalformed, "p.m3u8:2:"},
		{"master iframe", "#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"i\"\n", true, ErrUnsupported, "p.m3u8:2:"},
		{"media bad type", "#EXTM3U\n#EXT-X-MEDIA:TYPE=SOUND,GROUP-ID=\"a\",NAME=\"n\"\n", true, ErrMalformed, "p.m3u8:2:"},
		{"media duplicate attr", "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"n\"\n", true, ErrMalformed, "p.m3u8:2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.master {
				_, err = ParseMaster("p.m3u8", strings.NewReader(tc.in))
			} else {
				_, err = ParseMediaPlaylist("p.m3u8", strings.NewReader(tc.in))
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.pos) {
				t.Fatalf("error %q does not start with %q", err, tc.pos)
			}
		})
	}
}

func TestMasterWithRenditions(t *testing.T) {
	in := "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
		"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,URI=\"audio/en.m3u8\"\n" +
		"#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",INSTREAM-ID=\"CC1\"\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"aud\",CLOSED-CAPTIONS=\"cc\"\n" +
		"hi/index.m3u8\n"
	m, err := ParseMaster("m.m3u8", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Renditions) != 2 || m.Renditions[0].URI != "audio/en.m3u8" || m.Renditions[1].URI != "" || len(m.Renditions[0].Other) != 2 {
		t.Fatalf("renditions %+v", m.Renditions)
	}
	v := m.Variants[0]
	if v.Bandwidth != 1280000 || v.Codecs != "avc1.4d401f,mp4a.40.2" || v.Resolution != "1280x720" || len(v.Other) != 4 || v.URI != "hi/index.m3u8" {
		t.Fatalf("variant %+v", v)
	}
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := ParseMaster("enc", bytes.NewReader(enc))
	if err != nil || !equalJSON(m, m2) {
		t.Fatalf("round trip: %v\n%s", err, enc)
	}
	if !IsMaster([]byte(in)) || IsMaster([]byte(goodMedia)) {
		t.Fatal("IsMaster")
	}
}

func TestEncodeRefusesUnwritable(t *testing.T) {
	for _, p := range []*MediaPlaylist{
		{TargetDuration: 2, Segments: []Segment{{URI: "a\nb.ts", Duration: time.Second}}},
		{TargetDuration: 2, Segments: []Segment{{URI: "#a.ts", Duration: time.Second}}},
		{TargetDuration: 2, Segments: []Segment{{URI: "a.ts", Duration: 0}}},
		{TargetDuration: 2, Segments: []Segment{{URI: "a.ts", Duration: time.Second, Init: `i".mp4`}}},
		{TargetDuration: 2, Segments: []Segment{{URI: "a.ts", Duration: time.Second, Init: "i.mp4"}, {URI: "b.ts", Duration: time.Second}}},
	} {
		if _, err := p.Encode(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%+v: got %v, want ErrMalformed", p.Segments, err)
		}
	}
	m := &Master{Variants: []Variant{{URI: "v.m3u8", Bandwidth: 1, Codecs: `a"b`}}}
	if _, err := m.Encode(); !errors.Is(err, ErrMalformed) {
		t.Errorf("master: got %v", err)
	}
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		base, uri, want string
		err             error
	}{
		{"master.m3u8", "v0/index.m3u8", "v0/index.m3u8", nil},
		{"v0/index.m3u8", "seg%201.ts", "v0/seg 1.ts", nil},
		{"v0/index.m3u8", "../init.mp4", "init.mp4", nil},
		{"index.m3u8", "../x.ts", "", ErrMalformed},
		{"index.m3u8", "http://cdn/x.ts", "", ErrUnsupported},
		{"index.m3u8", "/x.ts", "", ErrUnsupported},
		{"index.m3u8", "x.ts?token=1", "", ErrUnsupported},
		{"index.m3u8", "", "", ErrMalformed},
	} {
		got, err := Resolve(tc.base, tc.uri)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("Resolve(%q, %q) = %q, %v; want %q, %v", tc.base, tc.uri, got, err, tc.want, tc.err)
		}
	}
}

func TestSecondsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"2", 2 * time.Second, "2.000"},
		{"2.000000", 2 * time.Second, "2.000"},
		{"1.9969", 1996900 * time.Microsecond, "1.996900"},
		{"0.0000000015", 1, "0.000000001"},
	} {
		d, err := parseSeconds(tc.in)
		if err != nil || d != tc.want || formatSeconds(d) != tc.out {
			t.Errorf("%q: %v %v %q", tc.in, d, err, formatSeconds(d))
		}
	}
	for _, bad := range []string{"", ".5", "1.", "-1", "1e3", "1,5", "99999999999999"} {
		if _, err := parseSeconds(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
