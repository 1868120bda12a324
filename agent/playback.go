package agent

import (
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// Playback bookkeeping. The rules that turn a player's requests into
// fetch decisions (start-up segments from the origin, deadlines from the
// player's buffer, the look-ahead, the late fallback) are policy.Playback's,
// which the simulator's viewers run too.
const (
	// playbackIdle ends a playback session that has made no request for
	// this long; ended sessions stay listed until maxPlaybacks pushes them out.
	playbackIdle = 30 * time.Second
	maxPlaybacks = 64
)

// PlaybackHeader lets a player name its playback session. Without it a
// session is the client's IP address + content + rendition, which is all
// a cookie-free gateway can see: two players of the same rendition behind
// one address share a session.
const PlaybackHeader = "X-Shoal-Playback"

// PlaybackStatus is one playback session in /api/status.
type PlaybackStatus struct {
	Client          string  `json:"client"`
	Content         string  `json:"content"`
	Rendition       string  `json:"rendition"`
	Active          bool    `json:"active"`
	Segments        int     `json:"segments"` // media segments fully sent
	Started         bool    `json:"started"`  // first segment sent
	StartupSeconds  float64 `json:"startup_seconds"`
	Stalls          int     `json:"stalls"`
	StallSeconds    float64 `json:"stall_seconds"`
	BufferedSeconds float64 `json:"buffered_seconds"` // media sent and not yet played, by the session's playback clock
	BytesSent       int64   `json:"bytes_sent"`
	// Where the bytes sent came from: chunks fetched straight from the
	// origin for this session (start-up, late chunks), chunks already held
	// when asked for (cache or swarm prefetch: mostly peers), and chunks
	// the request waited on from the deadline lane (a peer or the origin).
	BytesDirectOrigin int64 `json:"bytes_direct_origin"`
	BytesHeld         int64 `json:"bytes_held"`
	BytesWaited       int64 `json:"bytes_waited"`
}

// mediaRef is where a file sits in a content's media description.
type mediaRef struct {
	rend int // rendition index; -1 for a playlist or MPD
	seg  int // segment index; -1 for the rendition's init segment
}

// mediaIndex maps a media content's file paths to renditions and segments.
type mediaIndex struct {
	m       *manifest.Media
	files   map[string]mediaRef
	fileIdx map[string]int // path → index in the manifest's files
}

func newMediaIndex(mf *manifest.Manifest) *mediaIndex {
	m := mf.Media
	ix := &mediaIndex{m: m, files: map[string]mediaRef{m.Entry: {rend: -1}}, fileIdx: make(map[string]int, len(mf.Files))}
	for i, f := range mf.Files {
		ix.fileIdx[f.Path] = i
	}
	for ri, r := range m.Renditions {
		if r.Playlist != "" {
			ix.files[r.Playlist] = mediaRef{rend: -1}
		}
		if _, ok := ix.files[r.Init]; r.Init != "" && !ok {
			ix.files[r.Init] = mediaRef{rend: ri, seg: -1}
		}
		for si, s := range r.Segments {
			if _, ok := ix.files[s.Path]; !ok {
				ix.files[s.Path] = mediaRef{rend: ri, seg: si}
			}
		}
	}
	return ix
}

// lookup says how p is served: as a playlist, a segment, or (ok false) a
// plain file. Any .m3u8 or .mpd of a media content is a playlist.
func (ix *mediaIndex) lookup(p string) (ref mediaRef, ok bool) {
	if ref, ok = ix.files[p]; ok {
		return ref, true
	}
	if isPlaylistPath(p) {
		return mediaRef{rend: -1}, true
	}
	return mediaRef{}, false
}

// isPlaylistPath says whether p names a playlist or MPD (by its extension).
func isPlaylistPath(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".m3u8", ".m3u", ".mpd":
		return true
	}
	return false
}

// playKey identifies a playback session.
type playKey struct {
	client    string
	content   core.ContentID
	rendition string
}

// playback is one session's state.
type playback struct {
	key      playKey
	lastSeen time.Time
	rules    *policy.Playback // the session's play clock and request count
	segments int
	sent     int64
	direct   int64
	held     int64
	waited   int64
	ahead    *swarm.Interest // guarded by playbacks.mu: the look-ahead segments' chunks
}

// playbacks tracks the gateway's playback sessions and exports them.
type playbacks struct {
	clock core.Clock
	// lateAfter is how long after its due time a segment still missing
	// goes to the origin: policy.LateAfter (tests shorten it).
	lateAfter time.Duration

	startup   prometheus.Histogram
	stalls    prometheus.Counter
	stallSecs prometheus.Counter
	bytes     *prometheus.CounterVec

	mu       sync.Mutex
	totals   playTotals                     // guarded by mu: for fleet telemetry (telemetry.go)
	sessions map[playKey]*playback          // guarded by mu
	index    map[core.ContentID]*mediaIndex // guarded by mu
	checked  map[playlistKey]error          // guarded by mu: playlists already vetted
}

type playlistKey struct {
	content core.ContentID
	path    string
}

func newPlaybacks(clock core.Clock) *playbacks {
	return &playbacks{
		clock: clock, lateAfter: policy.LateAfter,
		startup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shoal_playback_startup_seconds", Help: "Playback start-up time: first request of a session to its first media segment fully sent.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 4, 8, 16},
		}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_playback_stalls_total", Help: "Media segments sent after their playback deadline (the player's buffer ran dry).",
		}),
		stallSecs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_playback_stall_seconds_total", Help: "Seconds players spent stalled, by the sessions' playback clocks.",
		}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_playback_bytes_total", Help: "Media bytes sent to players, by how the gateway got them (direct_origin, held, waited).",
		}, []string{"source"}),
		sessions: map[playKey]*playback{},
		index:    map[core.ContentID]*mediaIndex{},
		checked:  map[playlistKey]error{},
	}
}

// collectors are the playback metrics, for the peer's registry.
func (pb *playbacks) collectors() []prometheus.Collector {
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shoal_playback_sessions", Help: "Active playback sessions (a request within the last 30 s).",
	}, func() float64 { return float64(pb.active()) })
	return []prometheus.Collector{pb.startup, pb.stalls, pb.stallSecs, pb.bytes, active}
}

// mediaIndex returns c's media index, or nil for a content without media.
func (pb *playbacks) mediaIndex(c *swarm.Content) *mediaIndex {
	if c.Manifest.Media == nil {
		return nil
	}
	pb.mu.Lock()
	defer pb.mu.Unlock()
	ix := pb.index[c.ID]
	if ix == nil {
		ix = newMediaIndex(c.Manifest)
		pb.index[c.ID] = ix
	}
	return ix
}

// playlistVerdict returns the cached verdict on a playlist, if any.
func (pb *playbacks) playlistVerdict(k playlistKey) (err error, ok bool) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	err, ok = pb.checked[k]
	return err, ok
}

func (pb *playbacks) setPlaylistVerdict(k playlistKey, err error) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	pb.checked[k] = err
}

// clientOf names the player behind r.
func clientOf(r *http.Request) string {
	if id := r.Header.Get(PlaybackHeader); id != "" {
		return "id:" + id
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// begin records a request for a file of the playback k (a media segment
// or not: an init segment) and says what the rules make of it
// (policy.Playback.Request): whether it belongs to start-up (Direct: to be
// fetched straight from the origin), whether start-up requests are still to
// come (More: the look-ahead waits for them), and when it is due.
func (pb *playbacks) begin(k playKey, isSegment bool) (s *playback, st policy.Step) {
	now := pb.clock.Now()
	pb.mu.Lock()
	defer pb.mu.Unlock()
	s = pb.sessions[k]
	// One rendition at a time per player: switching drops the look-ahead
	// of the others, and idle playbacks keep none.
	for ok, o := range pb.sessions {
		if o.ahead != nil && (ok != k && ok.client == k.client && ok.content == k.content || now.Sub(o.lastSeen) > playbackIdle) {
			o.ahead.Release()
			o.ahead = nil
		}
	}
	if s == nil || now.Sub(s.lastSeen) > playbackIdle {
		s = &playback{key: k, rules: policy.NewPlayback(now)}
		pb.sessions[k] = s
		pb.evictLocked(now)
	}
	s.lastSeen = now
	return s, s.rules.Request(now, isSegment)
}

// segmentPlan is what the gateway does for one request of a playback.
type segmentPlan struct {
	policy.Step
	// late is when what is still missing goes to the origin (a Direct
	// request fetches from the origin at once).
	late time.Time
	// ahead is the look-ahead: segments prefetched from peers, each with
	// its deadline. It is set with the request (aheadNow) or, for the last
	// start-up request, once the response is sent (aheadAfter); earlier
	// start-up requests set none.
	ahead                []policy.SegmentDue
	aheadNow, aheadAfter bool
}

// plan records a request for segment seg of rendition rend (seg < 0: its
// init segment) in the playback k and says what to do for it.
func (pb *playbacks) plan(k playKey, rend *manifest.Rendition, seg int) (*playback, segmentPlan) {
	s, st := pb.begin(k, seg >= 0)
	pl := segmentPlan{Step: st, late: st.Due.Add(pb.lateAfter)}
	if seg >= 0 && (!st.Direct || !st.More) {
		pl.aheadNow, pl.aheadAfter = !st.Direct, st.Direct
		pl.ahead = policy.Lookahead(seg, st.Due, len(rend.Segments), func(j int) time.Duration {
			return time.Duration(rend.Segments[j].DurationMs) * time.Millisecond
		})
	}
	return s, pl
}

// lookahead returns s's look-ahead Interest in sess, creating it.
func (pb *playbacks) lookahead(s *playback, sess *swarm.Session) *swarm.Interest {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if s.ahead == nil {
		// From peers: a segment only the origin has comes when the player
		// asks for it (or its deadline nears), not for a look-ahead the
		// viewer may never reach.
		s.ahead = sess.WantFromPeers()
	}
	return s.ahead
}

// sent records what a request sent: n bytes, split by source; seg >= 0 is a
// media segment of duration dur that was sent whole.
func (pb *playbacks) sent(s *playback, seg int, dur time.Duration, direct, held, waited int64) {
	now := pb.clock.Now()
	pb.mu.Lock()
	defer pb.mu.Unlock()
	s.lastSeen = now
	s.sent += direct + held + waited
	s.direct += direct
	s.held += held
	s.waited += waited
	pb.bytes.WithLabelValues("direct_origin").Add(float64(direct))
	pb.bytes.WithLabelValues("held").Add(float64(held))
	pb.bytes.WithLabelValues("waited").Add(float64(waited))
	if seg < 0 {
		return
	}
	s.segments++
	c := &s.rules.Clock
	if !c.Started || seg != c.Last { // a retry plays nothing more
		pb.totals.watchS += dur.Seconds()
	}
	stall, first := c.Delivered(seg, dur, now)
	if first {
		pb.startup.Observe(c.Startup.Seconds())
		pb.totals.startup(c.Startup)
	}
	if stall > 0 {
		pb.stalls.Inc()
		pb.stallSecs.Add(stall.Seconds())
		pb.totals.stalls++
		pb.totals.stallS += stall.Seconds()
	}
}

// evictLocked drops the oldest ended sessions beyond maxPlaybacks.
func (pb *playbacks) evictLocked(now time.Time) {
	if len(pb.sessions) <= maxPlaybacks {
		return
	}
	all := make([]*playback, 0, len(pb.sessions))
	for _, s := range pb.sessions {
		all = append(all, s)
	}
	slices.SortFunc(all, func(a, b *playback) int { return a.lastSeen.Compare(b.lastSeen) })
	for _, s := range all[:len(all)-maxPlaybacks] {
		if s.ahead != nil {
			s.ahead.Release()
		}
		delete(pb.sessions, s.key)
	}
}

func (pb *playbacks) active() int {
	now := pb.clock.Now()
	pb.mu.Lock()
	defer pb.mu.Unlock()
	n := 0
	for _, s := range pb.sessions {
		if now.Sub(s.lastSeen) <= playbackIdle {
			n++
		}
	}
	return n
}

// status lists the sessions, most recently active first.
func (pb *playbacks) status() []PlaybackStatus {
	now := pb.clock.Now()
	pb.mu.Lock()
	defer pb.mu.Unlock()
	out := make([]PlaybackStatus, 0, len(pb.sessions))
	for _, s := range pb.sessions {
		c := &s.rules.Clock
		out = append(out, PlaybackStatus{
			Client: s.key.client, Content: s.key.content.String(), Rendition: s.key.rendition,
			Active: now.Sub(s.lastSeen) <= playbackIdle, Segments: s.segments, Started: c.Started,
			StartupSeconds: c.Startup.Seconds(), Stalls: c.Stalls, StallSeconds: c.StallTime.Seconds(),
			BufferedSeconds: c.Buffered(now).Seconds(), BytesSent: s.sent,
			BytesDirectOrigin: s.direct, BytesHeld: s.held, BytesWaited: s.waited,
		})
	}
	slices.SortFunc(out, func(a, b PlaybackStatus) int {
		return strings.Compare(a.Client+a.Content+a.Rendition, b.Client+b.Content+b.Rendition)
	})
	return out
}
