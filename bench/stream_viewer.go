package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/media"
	"github.com/shoal-cdn/shoal/player"
)

// maxBuffer stops a viewer downloading ahead (VOD) past this much media,
// as player.Play does.
const maxBuffer = 30 * time.Second

// watch is one viewer session: it plays an HLS playlist like hls.js does
// (player.Play plays a fixed list and never reloads). Given a master
// playlist it picks one variant by pickRendition and plays that media
// playlist throughout. It starts at segment from, or (from < 0)
// liveStartBehind segments behind the live edge, at the first segment of an
// ended playlist; downloads segments in order through player.Buffer's model,
// at most maxBuffer ahead; reloads the playlist while the next segment is
// not listed yet; and stops after want segments (the viewer leaves, or has
// seen what it came for) or at the end of an ended playlist. A VOD viewer
// then stays while its buffer plays out; a live one leaves at once. It
// returns the session and how many segments it downloaded.
func watch(ctx context.Context, cfg *StreamConfig, hc *http.Client, playlist string, from int64, want int) (Session, int, error) {
	start := time.Now()
	v := &viewer{hc: hc, url: playlist, base: playlist[:strings.LastIndex(playlist, "/")+1], begun: start}
	buf := player.NewBuffer(cfg.StartThreshold, 1, start)
	got := 0
	finish := func(err error) (Session, int, error) {
		now := time.Now()
		if err == nil {
			buf.Complete(now)
			if cfg.Mode == ModeVOD && core.Sleep(ctx, buf.Level(now)) == nil {
				// A VOD viewer stays until it has watched its window, and
				// its peer keeps serving the others meanwhile.
				now = time.Now()
			}
			// What is buffered plays out without stalls: account for it
			// without waiting in real time.
			now = now.Add(buf.Level(now))
		}
		st := buf.Stats(now)
		s := Session{Startup: st.Startup, Played: st.Played, PlayWall: st.PlayWall, StallWall: st.StallWall, Stalls: st.Stalls, Bytes: v.bytes, Media: v.media, Steps: v.steps}
		if err != nil {
			s.Err = err.Error()
		}
		return s, got, err
	}
	pl, err := v.open(ctx, cfg.PeerDown)
	if err != nil {
		return finish(err)
	}
	if len(pl.Segments) == 0 {
		return finish(fmt.Errorf("bench: %s lists no segment", v.url))
	}
	next := from
	switch {
	case from >= 0:
	case pl.Ended:
		next = pl.Segments[0].Seq
	default:
		next = pl.Segments[max(0, len(pl.Segments)-liveStartBehind)].Seq
	}
	for got < want {
		seg, ok := lookupSeq(pl, next)
		if !ok {
			switch {
			case next < pl.Segments[0].Seq: // fell out of the window: jump
				next = pl.Segments[0].Seq
				continue
			case pl.Ended:
				return finish(nil)
			}
			// Not published yet: reload a few times per segment, as
			// players do at the live edge.
			if err := core.Sleep(ctx, max(100*time.Millisecond, time.Duration(pl.TargetDuration)*time.Second/4)); err != nil {
				return finish(err)
			}
			if pl, err = v.playlist(ctx); err != nil {
				return finish(err)
			}
			continue
		}
		if wait := buf.Drain(time.Now(), maxBuffer); wait > 0 {
			if err := core.Sleep(ctx, wait); err != nil {
				return finish(err)
			}
		}
		u, err := resolveRef(v.url, seg.URI)
		if err != nil {
			return finish(err)
		}
		b, err := v.get(ctx, u)
		if err != nil {
			return finish(err)
		}
		v.media += int64(len(b))
		now := time.Now()
		buf.Add(now, seg.Duration)
		if buf.State(now) != player.Starting {
			v.started = true // start-up is over: no more steps
		}
		got++
		next++
	}
	return finish(nil)
}

// viewer is one session's HTTP state.
type viewer struct {
	hc    *http.Client
	url   string    // the media playlist, once chosen
	bytes int64     // everything received
	media int64     // media segment bytes received
	base  string    // the directory of the first playlist
	begun time.Time // the session's start
	// steps are the start-up's requests, in order, until playback
	// started.
	steps   []StartupStep
	started bool
}

// open loads the viewer's playlist. A master playlist is resolved to one of
// its variants, by pickRendition for a download of down bytes/s, whose
// media playlist is loaded and becomes the viewer's playlist.
func (v *viewer) open(ctx context.Context, down float64) (*media.MediaPlaylist, error) {
	b, err := v.get(ctx, v.url)
	if err != nil {
		return nil, err
	}
	if !media.IsMaster(b) {
		return v.parse(b)
	}
	m, err := media.ParseMaster(v.url, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if len(m.Variants) == 0 {
		return nil, fmt.Errorf("bench: master playlist %s lists no variant", v.url)
	}
	bw := make([]int64, len(m.Variants))
	for i, vr := range m.Variants {
		bw[i] = vr.Bandwidth
	}
	if v.url, err = resolveRef(v.url, m.Variants[pickRendition(bw, down)].URI); err != nil {
		return nil, err
	}
	return v.playlist(ctx)
}

func (v *viewer) playlist(ctx context.Context) (*media.MediaPlaylist, error) {
	b, err := v.get(ctx, v.url)
	if err != nil {
		return nil, err
	}
	return v.parse(b)
}

func (v *viewer) parse(b []byte) (*media.MediaPlaylist, error) {
	pl, err := media.ParseMediaPlaylist(v.url, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return pl, nil
}

func (v *viewer) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", u, err)
	}
	sent := time.Since(v.begun)
	resp, err := v.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", u, err)
	}
	defer resp.Body.Close()
	first := time.Since(v.begun)
	b, err := io.ReadAll(resp.Body)
	v.bytes += int64(len(b))
	if !v.started {
		v.steps = append(v.steps, StartupStep{Path: requestPath(v.base, u), Sent: sent, First: first, Done: time.Since(v.begun), Bytes: int64(len(b))})
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", u, err)
	}
	return b, nil
}

func lookupSeq(pl *media.MediaPlaylist, seq int64) (media.Segment, bool) {
	for _, s := range pl.Segments {
		if s.Seq == seq {
			return s, true
		}
	}
	return media.Segment{}, false
}

func resolveRef(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("bench: segment URI %q: %w", ref, err)
	}
	return b.ResolveReference(r).String(), nil
}
