package player

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// vodServer serves a 3-segment HLS VOD (behind a master playlist) and a
// 2-track DASH MPD; segment names in missing answer 502.
func vodServer(t *testing.T, missing ...string) *httptest.Server {
	t.Helper()
	files := map[string]string{
		"/master.m3u8": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nv/index.m3u8\n",
		"/v/index.m3u8": "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n" +
			"#EXTINF:2.0,\ns0.ts\n#EXTINF:2.0,\ns1.ts\n#EXTINF:2.0,\ns2.ts\n#EXT-X-ENDLIST\n",
		"/v/s0.ts": strings.Repeat("a", 1000), "/v/s1.ts": strings.Repeat("b", 1000), "/v/s2.ts": strings.Repeat("c", 1000),
		"/d/manifest.mpd": `<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT4S" minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
<Period id="0"><AdaptationSet contentType="video" mimeType="video/mp4">
<SegmentTemplate timescale="1000" initialization="init-$RepresentationID$.m4s" media="chunk-$RepresentationID$-$Number$.m4s" startNumber="1">
<SegmentTimeline><S t="0" d="2000" r="1"/></SegmentTimeline></SegmentTemplate>
<Representation id="0" bandwidth="1000" codecs="avc1.64000d" width="160" height="120"/></AdaptationSet>
<AdaptationSet contentType="audio" mimeType="audio/mp4">
<SegmentTemplate timescale="1000" initialization="init-$RepresentationID$.m4s" media="chunk-$RepresentationID$-$Number$.m4s" startNumber="1">
<SegmentTimeline><S t="0" d="2000" r="1"/></SegmentTimeline></SegmentTemplate>
<Representation id="1" bandwidth="1000" codecs="mp4a.40.2"/></AdaptationSet></Period></MPD>`,
		"/d/init-0.m4s": "i0", "/d/init-1.m4s": "i1",
		"/d/chunk-0-1.m4s": "v1", "/d/chunk-0-2.m4s": "v2", "/d/chunk-1-1.m4s": "a1", "/d/chunk-1-2.m4s": "a2",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range missing {
			if r.URL.Path == m {
				http.Error(w, "segment "+m+": not on the origin", http.StatusBadGateway)
				return
			}
		}
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPlayHLSToTheEnd(t *testing.T) {
	srv := vodServer(t)
	rep, err := Play(context.Background(), Config{URL: srv.URL + "/master.m3u8", Speed: 100})
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != Ended || rep.Segments != 3 || rep.Played != 6*time.Second {
		t.Fatalf("report %+v", rep)
	}
	if want := int64(3000 + len("#EXTM3U")); rep.Bytes < want {
		t.Fatalf("%d bytes downloaded, want at least %d", rep.Bytes, want)
	}
	if rep.RebufferRatio != rep.Stats.RebufferRatio() || rep.Stalls < 0 {
		t.Fatalf("inconsistent report %+v", rep)
	}
}

func TestPlayDASHBothTracks(t *testing.T) {
	srv := vodServer(t)
	rep, err := Play(context.Background(), Config{URL: srv.URL + "/d/manifest.mpd", Speed: 100})
	if err != nil {
		t.Fatal(err)
	}
	// 2 video + 2 audio segments, 4 s of media, 2 init segments.
	if rep.State != Ended || rep.Segments != 4 || rep.Played != 4*time.Second {
		t.Fatalf("report %+v", rep)
	}
}

func TestPlayFailsNamingTheSegment(t *testing.T) {
	srv := vodServer(t, "/v/s1.ts")
	_, err := Play(context.Background(), Config{URL: srv.URL + "/master.m3u8", Speed: 100})
	if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), "s1.ts") || !strings.Contains(err.Error(), "502") {
		t.Fatalf("playing with a missing segment: %v", err)
	}
	if _, err := Play(context.Background(), Config{URL: srv.URL + "/master.m3u8", Variant: 3}); !errors.Is(err, ErrPresentation) {
		t.Fatalf("missing variant: %v", err)
	}
}
