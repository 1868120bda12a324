package media

import (
	"bytes"
	"reflect"
	"testing"
)

func FuzzParseMediaPlaylist(f *testing.F) {
	f.Add([]byte(goodMedia))
	f.Add([]byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000000,\nindex0.ts\n#EXT-X-ENDLIST\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:1.9,t\nx.m4s\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseMediaPlaylist("f.m3u8", bytes.NewReader(b))
		if err != nil {
			return
		}
		roundTrip(t, p)
	})
}

func FuzzParseMaster(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=330000,RESOLUTION=160x120,CODECS=\"avc1.f4000b\"\nv0.m3u8\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"n\",DEFAULT=YES,URI=\"a.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a\"\nv.m3u8\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMaster("f.m3u8", bytes.NewReader(b))
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		m2, err := ParseMaster("enc", bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, enc)
		}
		if !equalJSON(m, m2) {
			t.Fatalf("parse(encode(m)) != m\n%s", enc)
		}
		if enc2, _ := m2.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatal("encoding not stable")
		}
	})
}

// FuzzParseMPD checks that parsing never panics, is deterministic, and that
// what it accepts is consistent.
func FuzzParseMPD(f *testing.F) {
	f.Add([]byte(mpdHead + `<Period><AdaptationSet><Representation id="a" bandwidth="1"><SegmentTemplate timescale="10" media="t$Time$-$Number%03d$.m4s" initialization="$RepresentationID$.mp4">
<SegmentTimeline><S t="0" d="15" r="1"/><S d="10" r="-1"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period></MPD>`))
	f.Add([]byte(mpdHead + `<Period><AdaptationSet><Representation id="r" bandwidth="9"><SegmentList timescale="90000" duration="180000">
<Initialization sourceURL="i.mp4"/><SegmentURL media="s1.m4s"/></SegmentList></Representation></AdaptationSet></Period></MPD>`))
	f.Add([]byte(mpdHead + `<Period duration="PT4S"><AdaptationSet><SegmentTemplate duration="2" media="$Number$"/><Representation id="x" bandwidth="2"/></AdaptationSet></Period></MPD>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMPD("f.mpd", bytes.NewReader(b))
		m2, err2 := ParseMPD("f.mpd", bytes.NewReader(b))
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(m, m2) {
			t.Fatal("ParseMPD is not deterministic")
		}
		if err != nil {
			return
		}
		for _, as := range m.AdaptationSets {
			for _, r := range as.Representations {
				for i, s := range r.Segments {
					if s.Duration <= 0 || s.Duration > MaxSegmentDuration || s.URI == "" || i > 0 && s.Seq <= r.Segments[i-1].Seq {
						t.Fatalf("representation %s segment %d: %+v", r.ID, i, s)
					}
				}
			}
		}
	})
}
