package media

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func BenchmarkParseMediaPlaylist(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n")
	for i := range 10000 {
		fmt.Fprintf(&sb, "#EXTINF:2.000000,\nsegment%05d.m4s\n", i)
	}
	sb.WriteString("#EXT-X-ENDLIST\n")
	in := []byte(sb.String())
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParseMediaPlaylist("b.m3u8", bytes.NewReader(in)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseMPDTimeline(b *testing.B) {
	in := []byte(mpdHead + `<Period><AdaptationSet><Representation id="v" bandwidth="1"><SegmentTemplate timescale="12800" media="c-$RepresentationID$-$Number%05d$.m4s" initialization="i.m4s">
<SegmentTimeline><S t="0" d="25600" r="9999"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period></MPD>`)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		m, err := ParseMPD("b.mpd", bytes.NewReader(in))
		if err != nil || len(m.AdaptationSets[0].Representations[0].Segments) != 10000 {
			b.Fatal(err)
		}
	}
}
