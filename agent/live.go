package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// Live channels on the gateway:
//
//	/live/<channel ID>/index.m3u8   live media playlist of the newest update (no-cache)
//	/live/<channel ID>/<segment>    a segment of the window, verified
//
// Each segment is a content of its own, so its bytes come from the swarm of
// that segment (peers first, the origin filling in) like any other content.
// A followed channel prefetches every segment of its window as soon as an
// update lists it, and leaves the swarms of segments that fall out of the
// window. Updates come from polling the origin and, on libp2p hosts, from
// GossipSub; on an in-memory network there is no gossip and polling alone
// keeps the channel current. Which channels are followed, and for how
// long, is live_follow.go.

// Swarming the live edge: when a live segment's chunks become due, and
// which segments come straight from the origin, are policy's live rules
// (policy.LiveEdgeDue, policy.LiveRequest; LiveEdgeSlack, LiveJoinPatience,
// LiveJoinPrefetch, StartupSegments), which the simulator's live viewers
// run too. A segment first seen as the newest of an update is left to the
// swarm, with the designated peers fetching what nobody has, until its edge
// due time; a segment already old when first seen (a viewer joining) waits
// LiveJoinPatience for peers.

// liveSegmentWait bounds how long a segment request waits for its bytes
// (at least; long segments get four target durations).
const liveSegmentWait = 10 * time.Second

// liveRoutes adds the /live/ routes to mux.
func (p *Peer) liveRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /live/{channel}/index.m3u8", p.gw.bounded(p.liveAuth(p.live.servePlaylist)))
	mux.HandleFunc("GET /live/{channel}/{segment}", p.gw.bounded(p.liveAuth(p.live.serveSegment)))
}

// Leave stops the swarm of id, if one runs: the peer stops fetching and
// serving it (its verified chunks stay in the cache until evicted). It
// reports whether there was a swarm to leave.
func (p *Peer) Leave(id core.ContentID) bool {
	p.mu.Lock()
	j := p.joined[id]
	delete(p.joined, id)
	p.mu.Unlock()
	if j == nil {
		return false
	}
	stop := func() {
		<-j.ready // j.cancel is set before ready closes
		if j.cancel != nil {
			j.cancel()
		}
	}
	select {
	case <-j.ready:
		stop()
	default:
		go stop() // still starting: stop it once started
	}
	return true
}

// apply brings the held segment swarms in line with u's window: new
// segments are joined and fetched at once, departed ones left.
func (lc *liveChannels) apply(ch *liveChannel, u *manifest.ChannelUpdate) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if u.Seq <= ch.seq || ch.dropped {
		return
	}
	first := ch.seq == 0 // segments of the first update were listed before we looked
	ch.seq = u.Seq
	in := make(map[core.ContentID]bool, len(u.Segments))
	for k, s := range u.Segments {
		in[s.Content] = true
		if !ch.held[s.Content] {
			ch.held[s.Content] = true
			lc.p.segChan.Store(s.Content, ch.id) // for channel-scoped tokens (access)
			if k == len(u.Segments)-1 && !first && !u.Ended {
				ch.due[s.Content] = policy.LiveEdgeDue(time.Now(), time.Duration(u.TargetDuration)*time.Second)
			}
			switch {
			case !first:
				lc.p.goOwned(func() { lc.prefetch(ch, s) })
			case k >= len(u.Segments)-policy.LiveJoinPrefetch:
				// Joining: the player's start-up segments come first; the
				// newest ones would only compete with them for our link.
				lc.p.goOwned(func() {
					lc.waitStarted(ch, policy.LiveStartHold)
					lc.prefetch(ch, s)
				})
			}
		}
	}
	for id := range ch.held {
		if !in[id] {
			delete(ch.held, id)
			delete(ch.due, id)
			lc.p.segChan.Delete(id)
			if ch.busy[id] == 0 { // else the last request for it leaves it (serving)
				lc.p.Leave(id)
			}
		}
	}
}

// serving counts a request for segment id in progress and returns the
// function that ends it: a segment that left the window meanwhile is left
// once its last request is done, not under a player still reading it (a
// player three segments behind the edge asks for segments about to leave
// the window).
func (lc *liveChannels) serving(ch *liveChannel, id core.ContentID) (done func()) {
	ch.mu.Lock()
	ch.busy[id]++
	ch.mu.Unlock()
	return func() {
		ch.mu.Lock()
		ch.busy[id]--
		leave := ch.busy[id] == 0 && !ch.held[id]
		if ch.busy[id] == 0 {
			delete(ch.busy, id)
		}
		ch.mu.Unlock()
		if leave {
			lc.p.Leave(id)
		}
	}
}

// waitStarted returns once the channel has served its start-up segments, or
// after limit.
func (lc *liveChannels) waitStarted(ch *liveChannel, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for ch.served.Load() < policy.StartupSegments && time.Now().Before(deadline) {
		select {
		case <-ch.ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// prefetch joins a segment's swarm, which fetches all of it in the
// background; requests make chunks due (serveSegment).
func (lc *liveChannels) prefetch(ch *liveChannel, s manifest.ChannelSegment) {
	p := lc.p
	if _, err := p.JoinAll(ch.ctx, s.Content); err != nil {
		p.log.Debug("live: segment unavailable", "segment", s.Name, "content", s.Content, "err", err)
		return
	}
	ch.mu.Lock()
	leave := !ch.held[s.Content] && ch.busy[s.Content] == 0
	ch.mu.Unlock()
	if leave { // left the window while we were joining
		p.Leave(s.Content)
	}
}

// livePlayKey is a live playback's session among the gateway's playbacks
// (playback.go): the client and the channel, whose one media playlist is
// the "rendition" played. Start-up, stalls and watch time are measured on
// it as for on-demand playbacks, and reach the fleet telemetry.
func livePlayKey(r *http.Request, ch *liveChannel) playKey {
	return playKey{client: clientOf(r), content: core.ContentID(ch.f.ID()), rendition: "live"}
}

func (lc *liveChannels) servePlaylist(w http.ResponseWriter, r *http.Request) {
	ch, u, release, code, err := lc.channel(r.Context(), r.PathValue("channel"))
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	defer release()
	if r.Method == http.MethodGet {
		lc.p.plays.begin(livePlayKey(r, ch), false) // a playback's start-up begins here
	}
	// Segment URIs are relative: they resolve to /live/<id>/<name>.
	b, err := live.Playlist(u, "")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

func (lc *liveChannels) serveSegment(w http.ResponseWriter, r *http.Request) {
	ch, u, release, code, err := lc.channel(r.Context(), r.PathValue("channel"))
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	defer release()
	name := r.PathValue("segment")
	seg, ok := u.Segment(name)
	if !ok {
		http.Error(w, fmt.Sprintf("segment %q is not in the window of live channel %s (update %d, segments %d to %d)",
			name, ch.f.ID(), u.Seq, u.MediaSequence, u.MediaSequence+uint64(len(u.Segments))-1), http.StatusNotFound)
		return
	}
	defer lc.serving(ch, seg.Content)()
	ctx, cancel := context.WithTimeout(r.Context(), max(liveSegmentWait, 4*time.Duration(u.TargetDuration)*time.Second))
	defer cancel()
	ch.mu.Lock()
	due := ch.due[seg.Content]
	ch.mu.Unlock()
	sess, ctype, direct, err := lc.segmentReady(ctx, seg, due, int(ch.served.Load()))
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			code = http.StatusGatewayTimeout
		}
		http.Error(w, fmt.Sprintf("live channel %s: %v", ch.f.ID(), err), code)
		return
	}
	buf := lc.p.gw.buffer(w, r) // before the headers: a 503 is still possible
	if buf == nil {
		return
	}
	ch.served.Add(1)
	h := w.Header()
	h.Set("Content-Type", ctype)
	// The name may be reused by a restarted encoder: cache briefly only.
	h.Set("Cache-Control", "max-age="+strconv.FormatInt(u.TargetDuration*int64(len(u.Segments)), 10))
	h.Set("Content-Length", strconv.FormatInt(seg.Size, 10))
	if r.Method == http.MethodHead || seg.Size == 0 {
		lc.p.gw.pool.put(buf)
		return
	}
	// Every chunk is held and verified: the stream reads them from the
	// cache in the gateway's bounded buffers (one that left the cache
	// since is fetched again; a failure then cuts the response).
	pb, _ := lc.p.plays.begin(livePlayKey(r, ch), true)
	if err := lc.p.stream(r.Context(), w, sess, 0, 0, seg.Size, 0, buf); err != nil {
		abortResponse(r, err)
		return
	}
	var fromOrigin, waited int64 // how the segment came, for the playback's byte counts
	if direct {
		fromOrigin = seg.Size
	} else {
		waited = seg.Size
	}
	lc.p.plays.sent(pb, int(seg.Seq), seg.Duration(), fromOrigin, 0, waited)
}

// segmentReady waits until a whole segment is held, every chunk verified,
// and returns its session and type, and whether it was fetched straight
// from the origin (start-up: the channel has served fewer than
// policy.StartupSegments segments). edgeDue is the segment's edge due time
// (zero if it was not first seen at the edge). Having it whole before
// answering lets a failure be a clean HTTP error instead of a truncated
// body; the bytes stay in the cache.
func (lc *liveChannels) segmentReady(ctx context.Context, seg manifest.ChannelSegment, edgeDue time.Time, served int) (*swarm.Session, string, bool, error) {
	p := lc.p
	sess, err := p.JoinAll(ctx, seg.Content) // a live segment is watched whole
	if err != nil {
		return nil, "", false, fmt.Errorf("segment %d (%s): %w", seg.Seq, seg.Name, err)
	}
	c := sess.Content()
	if len(c.Manifest.Files) != 1 || c.Manifest.Files[0].Size != seg.Size {
		return nil, "", false, fmt.Errorf("%w: segment %d (%s): content %s is not one file of %d bytes", ErrVerify, seg.Seq, seg.Name, seg.Content, seg.Size)
	}
	if err := p.Layer(ctx, sess, 0); err != nil {
		return nil, "", false, fmt.Errorf("segment %d (%s): %w", seg.Seq, seg.Name, err)
	}
	f := c.Manifest.Files[0]
	st := policy.LiveRequest(time.Now(), edgeDue, served, sess.Stats().Peers)
	if st.Direct {
		// Start-up: whatever the swarm has not delivered yet comes from the
		// origin now; chunks peers deliver meanwhile are skipped.
		if err := sess.FetchFromOrigin(ctx, 0, c.Len()); err != nil {
			return nil, "", true, fmt.Errorf("segment %d (%s): %w", seg.Seq, seg.Name, err)
		}
	}
	if wait := time.Until(st.Due); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-sess.Done():
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	sess.Prioritize(0, c.Len(), time.Now(), policy.LiveChunkSpacing)
	for i := range c.Len() {
		if err := sess.WaitChunk(ctx, i); err != nil {
			return nil, "", st.Direct, fmt.Errorf("segment %d (%s): chunk %d: %w", seg.Seq, seg.Name, i, err)
		}
	}
	ctype := fileType(f)
	if ctype == media.TypeOctetStream {
		ctype = media.TypeMPEG2TS // live channels carry MPEG-TS segments only
	}
	return sess, ctype, st.Direct, nil
}
