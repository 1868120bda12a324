package player

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/media"
)

// Errors of a playback.
var (
	// ErrFetch means a playlist or segment could not be downloaded.
	ErrFetch = errors.New("download failed")
	// ErrPresentation means the playlist or MPD is not playable here.
	ErrPresentation = errors.New("unplayable presentation")
)

// Config describes one playback. Zero values take the defaults.
type Config struct {
	// URL of an HLS master or media playlist, or of a DASH MPD (".mpd").
	URL string
	// Speed runs the playback clock Speed× real time (default 1): a 60 s
	// stream plays in 60/Speed s. Downloads are real.
	Speed float64
	// StartThreshold is the media buffered before playback starts or
	// resumes after a stall (default 2 segments' worth: 2 × the first
	// segment's duration).
	StartThreshold time.Duration
	// MaxBuffer stops downloading ahead while this much is buffered
	// (default 30 s).
	MaxBuffer time.Duration
	// Variant picks the HLS master playlist's variant (default 0, the
	// first). A DASH playback takes each adaptation set's first
	// representation.
	Variant int
	// StatusURL is a gateway's /api/status, read at the end for offload.
	StatusURL string
	// PlaybackID is sent as X-Shoal-Playback so the gateway tells this
	// playback apart from others on the same address.
	PlaybackID string
	Client     *http.Client
	Clock      core.Clock
}

// Report is what a playback saw. Times are wall-clock except Played.
type Report struct {
	Stats
	Segments         int     // media segments downloaded
	Bytes            int64   // bytes downloaded (playlists, init and media segments)
	RebufferRatio    float64 // stall time / (play time + stall time)
	RebuffersPerHour float64 // stalls per hour of media played
	// From the gateway's /api/status, when StatusURL is set: its bytes
	// from peers and from the origin, and their ratio.
	BytesFromPeers  int64
	BytesFromOrigin int64
	Offload         float64
}

// track is one stream to download: a rendition's init and media segments.
type track struct {
	init string
	segs []media.Segment
	next int           // next segment to download
	end  time.Duration // media downloaded
}

// Play plays cfg.URL to the end and reports. It fails on the first
// download that fails, naming what and why (the gateway's message
// included).
func Play(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	if cfg.Clock == nil {
		cfg.Clock = core.RealClock{}
	}
	if cfg.MaxBuffer <= 0 {
		cfg.MaxBuffer = 30 * time.Second
	}
	pl := &playback{cfg: cfg}
	start := cfg.Clock.Now()
	tracks, err := pl.tracks(ctx, cfg.URL)
	if err != nil {
		return Report{}, err
	}
	th := cfg.StartThreshold
	if th <= 0 {
		th = 2 * tracks[0].segs[0].Duration
	}
	buf := NewBuffer(th, cfg.Speed, start)
	for _, t := range tracks {
		if t.init != "" {
			if _, err := pl.get(ctx, t.init); err != nil {
				return Report{}, err
			}
		}
	}
	rep := Report{}
	for {
		// The track furthest behind goes next, so the tracks stay aligned
		// and the buffer (the least any track holds) grows.
		var t *track
		for _, c := range tracks {
			if c.next < len(c.segs) && (t == nil || c.end < t.end) {
				t = c
			}
		}
		if t == nil {
			break
		}
		if wait := buf.Drain(cfg.Clock.Now(), cfg.MaxBuffer); wait > 0 {
			if err := core.Sleep(ctx, wait); err != nil {
				return Report{}, err
			}
		}
		before := buffered(tracks)
		if _, err := pl.get(ctx, t.segs[t.next].URI); err != nil {
			return Report{}, err
		}
		t.end += t.segs[t.next].Duration
		t.next++
		rep.Segments++
		buf.Add(cfg.Clock.Now(), buffered(tracks)-before)
	}
	buf.Complete(cfg.Clock.Now())
	// Play out what is buffered.
	for buf.State(cfg.Clock.Now()) == Playing {
		if err := core.Sleep(ctx, max(buf.Drain(cfg.Clock.Now(), 0), time.Millisecond)); err != nil {
			return Report{}, err
		}
	}
	rep.Stats = buf.Stats(cfg.Clock.Now())
	rep.Bytes = pl.bytes
	rep.RebufferRatio = rep.Stats.RebufferRatio()
	rep.RebuffersPerHour = rep.Stats.RebuffersPerHour()
	if cfg.StatusURL != "" {
		if err := pl.offload(ctx, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// buffered is the media every track holds.
func buffered(tracks []*track) time.Duration {
	m := tracks[0].end
	for _, t := range tracks[1:] {
		m = min(m, t.end)
	}
	return m
}

// playback holds one Play's I/O state.
type playback struct {
	cfg   Config
	bytes int64
}

// get downloads u whole.
func (pl *playback) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFetch, u, err)
	}
	if pl.cfg.PlaybackID != "" {
		req.Header.Set("X-Shoal-Playback", pl.cfg.PlaybackID)
	}
	resp, err := pl.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFetch, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	pl.bytes += int64(len(b))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: %s: %s", ErrFetch, u, resp.Status, strings.TrimSpace(string(b)))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFetch, u, err)
	}
	return b, nil
}

// resolve makes ref, found in the document at base, absolute.
func resolve(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrPresentation, base, err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("%w: URI %q in %s: %v", ErrPresentation, ref, base, err)
	}
	return b.ResolveReference(r).String(), nil
}

// tracks loads the presentation at u and returns what to download, with
// every URI made absolute.
func (pl *playback) tracks(ctx context.Context, u string) ([]*track, error) {
	b, err := pl.get(ctx, u)
	if err != nil {
		return nil, err
	}
	var tracks []*track
	if strings.HasSuffix(strings.ToLower(strings.SplitN(u, "?", 2)[0]), ".mpd") {
		m, err := media.ParseMPD(u, bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPresentation, err)
		}
		for _, as := range m.AdaptationSets {
			if len(as.Representations) > 0 {
				r := as.Representations[0]
				tracks = append(tracks, &track{init: r.Init, segs: r.Segments})
			}
		}
	} else {
		if media.IsMaster(b) {
			m, err := media.ParseMaster(u, bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrPresentation, err)
			}
			if pl.cfg.Variant < 0 || pl.cfg.Variant >= len(m.Variants) {
				return nil, fmt.Errorf("%w: %s: variant %d of %d", ErrPresentation, u, pl.cfg.Variant, len(m.Variants))
			}
			if u, err = resolve(u, m.Variants[pl.cfg.Variant].URI); err != nil {
				return nil, err
			}
			if b, err = pl.get(ctx, u); err != nil {
				return nil, err
			}
		}
		p, err := media.ParseMediaPlaylist(u, bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPresentation, err)
		}
		t := &track{segs: p.Segments}
		if len(p.Segments) > 0 {
			t.init = p.Segments[0].Init
		}
		tracks = append(tracks, t)
	}
	for _, t := range tracks {
		if len(t.segs) == 0 {
			return nil, fmt.Errorf("%w: %s: a track without segments", ErrPresentation, u)
		}
		if t.init != "" {
			if t.init, err = resolve(u, t.init); err != nil {
				return nil, err
			}
		}
		t.segs = append([]media.Segment(nil), t.segs...)
		for k := range t.segs {
			if t.segs[k].URI, err = resolve(u, t.segs[k].URI); err != nil {
				return nil, err
			}
		}
	}
	if len(tracks) == 0 {
		return nil, fmt.Errorf("%w: %s: no representation", ErrPresentation, u)
	}
	return tracks, nil
}

// offload reads the gateway's status into rep.
func (pl *playback) offload(ctx context.Context, rep *Report) error {
	b, err := pl.get(ctx, pl.cfg.StatusURL)
	if err != nil {
		return err
	}
	pl.bytes -= int64(len(b)) // not media
	var st struct {
		BytesFromPeers  int64   `json:"bytes_from_peers"`
		BytesFromOrigin int64   `json:"bytes_from_origin"`
		OffloadRatio    float64 `json:"offload_ratio"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrFetch, pl.cfg.StatusURL, err)
	}
	rep.BytesFromPeers, rep.BytesFromOrigin, rep.Offload = st.BytesFromPeers, st.BytesFromOrigin, st.OffloadRatio
	return nil
}
