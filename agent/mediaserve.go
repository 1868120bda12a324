package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/swarm/policy"
)

// errBadPlaylist means a published playlist cannot be served as is.
var errBadPlaylist = errors.New("playlist not servable through the gateway")

// serveMedia answers a request for file fi of a media content (a playlist,
// MPD, init or media segment) and reports whether it did; plain files are
// left to the generic path.
func (p *Peer) serveMedia(w http.ResponseWriter, r *http.Request, sess *swarm.Session, fi int) bool {
	c := sess.Content()
	ix := p.plays.mediaIndex(c)
	if ix == nil {
		return false
	}
	f := c.Manifest.Files[fi]
	ref, ok := ix.lookup(f.Path)
	if !ok {
		return false
	}
	if ref.rend < 0 {
		p.prefetchStartRoots(sess, ix, f.Path)
		p.servePlaylist(w, r, sess, fi)
	} else {
		p.serveSegment(w, r, sess, fi, ix, ref)
	}
	return true
}

// servePlaylist sends a playlist or MPD whole. It is fetched straight from
// the origin when not held: it is the first thing a player asks for, and
// start-up never waits on the swarm. It is served byte for byte: publish
// accepts only relative URIs (media.Resolve), so every URI in it resolves
// back to this gateway; the check below refuses, once per playlist, one
// that would send the player elsewhere.
func (p *Peer) servePlaylist(w http.ResponseWriter, r *http.Request, sess *swarm.Session, fi int) {
	c := sess.Content()
	f := c.Manifest.Files[fi]
	if f.Size > media.MaxInputSize {
		// Players and the vetting below hold a playlist whole: bounded.
		http.Error(w, fmt.Sprintf("playlist %s of %s: %d bytes, more than the %d a playlist may have", f.Path, c.ID, f.Size, media.MaxInputSize), http.StatusBadGateway)
		return
	}
	a, b := c.FileChunk(fi, 0), c.FileChunk(fi, int(f.Chunks))
	err := p.Layer(r.Context(), sess, fi)
	if err == nil {
		err = sess.FetchFromOrigin(r.Context(), a, b)
	}
	if err != nil {
		if r.Context().Err() == nil {
			httpError(w, fmt.Errorf("playlist %s of %s: %w", f.Path, c.ID, err), http.StatusBadGateway)
		}
		return
	}
	k := playlistKey{c.ID, f.Path}
	err, ok := p.plays.playlistVerdict(k)
	if ok && err == nil {
		// Vetted before: streamed from the cache in the gateway's bounded
		// buffers, like any file.
		p.serveFile(w, r, sess, fi, fileType(f), 0)
		return
	}
	var body bytes.Buffer
	for i := a; i < b; i++ {
		data, err := p.cache.chunks.Get(c.Hash(i))
		if err != nil {
			http.Error(w, fmt.Sprintf("playlist %s of %s: %s: %v", f.Path, c.ID, c.Describe(i), err), http.StatusBadGateway)
			return
		}
		body.Write(data)
	}
	if !ok {
		err = vetPlaylist(c.Manifest.Media.Kind, f.Path, body.Bytes())
		p.plays.setPlaylistVerdict(k, err)
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("content %s: %v", c.ID, err), http.StatusBadGateway)
		return
	}
	h := w.Header()
	h.Set("Content-Type", fileType(f))
	f, _ = c.Roots.File(fi) // known: its layer is loaded
	h.Set("ETag", fileETag(f))
	h.Set("Cache-Control", "public, max-age=31536000, immutable") // VOD: the content never changes
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body.Bytes()))
}

// startSegments is how many segments of a rendition a player asks for
// first: the root pages of these are loaded along with its playlist.
const startSegments = 2

// prefetchStartRoots loads, in the background, the root pages (of a paged
// manifest) of the files a player asks for after playlist name: the first
// segments of the renditions it lists (an HLS media playlist: its own; a
// DASH MPD: every representation's), so that their root pages travel while
// the playlist does, not before the segments' hash layers. An HLS master
// playlist needs none: the player picks one rendition, whose playlist comes
// next.
func (p *Peer) prefetchStartRoots(sess *swarm.Session, ix *mediaIndex, name string) {
	c := sess.Content()
	if !c.Manifest.Paged() {
		return
	}
	j := p.joinedOf(c.ID)
	if j == nil || j.sess != sess {
		return
	}
	var fis []int
	for _, r := range ix.m.Renditions {
		if r.Playlist != name && (ix.m.Kind != manifest.MediaDASH || name != ix.m.Entry) {
			continue
		}
		paths := []string{r.Init}
		for _, s := range r.Segments[:min(startSegments, len(r.Segments))] {
			paths = append(paths, s.Path)
		}
		for _, path := range paths {
			if fi, ok := ix.fileIdx[path]; ok {
				fis = append(fis, fi)
			}
		}
	}
	p.prefetchRootPages(j, fis)
}

// vetPlaylist parses a playlist or MPD and checks that every URI in it is
// relative and stays inside the content.
func vetPlaylist(kind, name string, b []byte) error {
	var uris []string
	switch {
	case kind == manifest.MediaDASH || strings.HasSuffix(strings.ToLower(name), ".mpd"):
		m, err := media.ParseMPD(name, bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%w: %w", errBadPlaylist, err)
		}
		for _, as := range m.AdaptationSets {
			for _, rep := range as.Representations {
				uris = append(uris, rep.Init)
				for _, s := range rep.Segments {
					uris = append(uris, s.URI, s.Init)
				}
			}
		}
	case media.IsMaster(b):
		m, err := media.ParseMaster(name, bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%w: %w", errBadPlaylist, err)
		}
		for _, v := range m.Variants {
			uris = append(uris, v.URI)
		}
		for _, r := range m.Renditions {
			uris = append(uris, r.URI)
		}
	default:
		m, err := media.ParseMediaPlaylist(name, bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%w: %w", errBadPlaylist, err)
		}
		for _, s := range m.Segments {
			uris = append(uris, s.URI, s.Init)
		}
	}
	for _, u := range uris {
		if u == "" {
			continue
		}
		if _, err := media.Resolve(name, u); err != nil {
			return fmt.Errorf("%w: %s: %w", errBadPlaylist, name, err)
		}
	}
	return nil
}

// serveSegment sends an init or media segment of a playback. During
// start-up the segment is fetched straight from the origin and streamed as
// its chunks arrive, each once verified: the player's download overlaps
// the peer's. Otherwise it comes through the deadline lane, with a direct
// origin fetch for what is missing LateAfter past its due time, and the whole
// requested range is held before the first byte goes out. Either way the
// first chunk is held before the headers, so a segment nobody has becomes
// a 502 naming it; a start-up fetch that fails after that cuts the
// connection (never a clean, short body). The rendition's next
// policy.LookaheadSegments are prefetched, each due when the player will
// need it. What is decided when is policy.Playback's (playbacks.plan).
func (p *Peer) serveSegment(w http.ResponseWriter, r *http.Request, sess *swarm.Session, fi int, ix *mediaIndex, ref mediaRef) {
	c := sess.Content()
	f, err := p.File(r.Context(), sess, fi) // its root is its ETag
	if err != nil {
		if r.Context().Err() == nil {
			httpError(w, fmt.Errorf("%s of content %s: %w", c.Manifest.Files[fi].Path, c.ID, err), http.StatusBadGateway)
		}
		return
	}
	rend := ix.m.Renditions[ref.rend]
	start, end, partial, ok := parseRange(rangeHeader(r, fileETag(f)), f.Size)
	if !ok {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", f.Size))
		http.Error(w, "range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
		return
	}
	if r.Method == http.MethodHead || end <= start || notModified(r, f) {
		// Headers only (or 304): nothing is fetched, and it is not a
		// playback step.
		writeHeaders(w, r, f, fileType(f), start, end, partial)
		return
	}
	pb, plan := p.plays.plan(playKey{clientOf(r), c.ID, rend.ID}, &rend, ref.seg)
	// The look-ahead starts with the request, except during start-up: then
	// it would share the viewer's link with the segments the player is
	// waiting for, so it starts once the last of them is sent.
	if plan.aheadNow {
		p.prefetch(pb, sess, ix, rend, plan.ahead)
	}
	var got chunkSources
	body := r.Context() // what the body is streamed under
	{
		cs := c.Manifest.ChunkSize
		a, b := c.FileChunk(fi, int(start/cs)), c.FileChunk(fi, int((end-1)/cs))+1
		in := sess.Want(swarm.Range{From: a, To: b})
		defer in.Release()
		err := p.Layer(r.Context(), sess, fi)
		switch {
		case err == nil && plan.Direct:
			var stop func()
			if got, body, stop, err = p.startDirect(r.Context(), sess, a, b); err == nil {
				defer stop()
			}
		case err == nil:
			got, err = p.ensure(r.Context(), sess, a, b, plan.Due, plan.late)
		}
		if err != nil {
			if r.Context().Err() == nil {
				what := "init segment"
				if ref.seg >= 0 {
					what = fmt.Sprintf("segment %d", ref.seg)
				}
				httpError(w, fmt.Errorf("%s %s of rendition %s of content %s: %w", what, f.Path, rend.ID, c.ID, err), http.StatusBadGateway)
			}
			return
		}
	}
	buf := p.gw.buffer(w, r) // before the headers: a 503 is still possible
	if buf == nil {
		return
	}
	if !writeHeaders(w, r, f, fileType(f), start, end, partial) {
		p.gw.pool.put(buf)
		return
	}
	if err := p.stream(body, w, sess, fi, start, end, 0, buf); err != nil {
		if cause := context.Cause(body); r.Context().Err() == nil && cause != nil {
			p.log.Warn("gateway: start-up segment cut short", "file", f.Path, "content", c.ID, "err", cause)
		}
		abortResponse(r, err)
		return
	}
	if plan.aheadAfter {
		p.prefetch(pb, sess, ix, rend, plan.ahead)
	}
	if plan.aheadAfter || !plan.Direct {
		p.releaseDials(c.ID) // start-up is over: the swarm may come in
	}
	dur := time.Duration(0)
	seg := ref.seg
	if seg >= 0 {
		dur = time.Duration(rend.Segments[seg].DurationMs) * time.Millisecond
		if partial && end < f.Size {
			seg = -1 // part of a segment: bytes, but not a delivery
		}
	}
	d, h, wt := got.split(c.Manifest.ChunkSize, start, end, c.FileChunk(fi, 0))
	p.plays.sent(pb, seg, dur, d, h, wt)
}

// fileType is the Content-Type the gateway serves f with: the type signed
// into the manifest when it is one of media's fixed table (the publisher
// may know better than the name, e.g. audio/mp4 for an audio-only
// rendition's .m4s), otherwise the table's type for the name. So a
// manifest made by a publisher that used its host's MIME database (.ts as
// text/vnd.trolltech.linguist) still plays, and no publisher can have the
// gateway serve a type a browser would run (text/html, image/svg+xml).
func fileType(f manifest.File) string {
	if media.KnownContentType(f.MediaType) {
		return f.MediaType
	}
	return media.ContentType(f.Path)
}

// prefetch moves the playback's look-ahead to segs (policy.Lookahead:
// the rendition's segments after the one just asked for, each due when the
// player will reach it). Only this rendition, from this position: a seek or
// a rendition switch moves the look-ahead, it never adds to it. Hash layers
// of those segments are loaded first, off the request's path.
func (p *Peer) prefetch(pb *playback, sess *swarm.Session, ix *mediaIndex, rend manifest.Rendition, segs []policy.SegmentDue) {
	c := sess.Content()
	type next struct {
		fi  int
		due time.Time
	}
	var todo []next
	var ranges []swarm.Range
	for _, sd := range segs {
		fi, ok := ix.fileIdx[rend.Segments[sd.Seg].Path]
		if !ok {
			continue
		}
		a, b := c.FileChunks(fi)
		todo = append(todo, next{fi, sd.Due})
		ranges = append(ranges, swarm.Range{From: a, To: b})
	}
	in := p.plays.lookahead(pb, sess)
	in.Set(ranges...)
	j := p.joinedOf(c.ID)
	if j == nil || len(todo) == 0 {
		return
	}
	p.goOwned(func() {
		for _, n := range todo {
			if err := p.layer(j.ctx, j, n.fi); err != nil {
				return
			}
			a, b := c.FileChunks(n.fi)
			sess.Prioritize(a, b, n.due, 0)
		}
	})
}

// chunkSources records how each chunk of a request was obtained.
type chunkSources struct {
	from  int
	kinds []byte // per chunk from from: srcHeld, srcDirect or srcWaited
}

const (
	srcHeld = iota
	srcDirect
	srcWaited
)

// split counts the bytes of [start, end) of a file (whose first chunk is
// base) by source.
func (cs chunkSources) split(chunkSize, start, end int64, base int) (direct, held, waited int64) {
	for k, kind := range cs.kinds {
		lo := int64(cs.from+k-base) * chunkSize
		n := min(end, lo+chunkSize) - max(start, lo)
		if n <= 0 {
			continue
		}
		switch kind {
		case srcDirect:
			direct += n
		case srcWaited:
			waited += n
		default:
			held += n
		}
	}
	return direct, held, waited
}

// startDirect fetches chunks [a, b) straight from the origin in the
// background and returns once chunk a is held, so the response can start
// while the rest arrives. The context it returns ends when the fetch fails
// (its cause is the failure), so the stream stops instead of waiting for a
// chunk that is not coming; stop ends the fetch and waits for it. It
// reports how each chunk came.
func (p *Peer) startDirect(ctx context.Context, sess *swarm.Session, a, b int) (chunkSources, context.Context, func(), error) {
	src := chunkSources{from: a, kinds: make([]byte, b-a)}
	for i := a; i < b; i++ {
		if !sess.Has(i) {
			src.kinds[i-a] = srcDirect
		}
	}
	fctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sess.FetchFromOrigin(fctx, a, b); err != nil {
			cancel(err)
		}
	}()
	stop := func() {
		cancel(nil)
		<-done
	}
	if err := sess.WaitChunk(fctx, a); err != nil {
		if fctx.Err() != nil && ctx.Err() == nil {
			err = context.Cause(fctx) // the fetch failed: say why
		}
		stop()
		return src, nil, nil, err
	}
	return src, fctx, stop, nil
}

// ensure makes chunks [a, b) held through the deadline lane (due at due),
// falling back to the origin at late for what is still missing. It reports
// how each chunk came.
func (p *Peer) ensure(ctx context.Context, sess *swarm.Session, a, b int, due, late time.Time) (chunkSources, error) {
	src := chunkSources{from: a, kinds: make([]byte, b-a)}
	missing := func(from int) {
		for i := from; i < b; i++ {
			if !sess.Has(i) {
				src.kinds[i-a] = srcDirect
			}
		}
	}
	for i := a; i < b; i++ {
		if !sess.Has(i) {
			src.kinds[i-a] = srcWaited
		}
	}
	sess.Prioritize(a, b, due, 0)
	lateT := time.NewTimer(time.Until(late))
	defer lateT.Stop()
	for i := a; i < b; i++ {
		if sess.Has(i) {
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		arrived := make(chan error, 1)
		go func() { arrived <- sess.WaitChunk(wctx, i) }()
		select {
		case err := <-arrived:
			cancel()
			if err != nil {
				return src, err
			}
			continue
		case <-lateT.C:
		}
		cancel()
		// Overdue: the rest of the range comes straight from the origin.
		missing(i)
		return src, sess.FetchFromOrigin(ctx, i, b)
	}
	return src, nil
}
