package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/store"
	"github.com/shoal-cdn/shoal/swarm"
)

// lookahead is how many chunks past the one being sent the gateway asks the
// swarm to fetch early, so bytes keep flowing.
const lookahead = 8

// Gateway is the peer's local HTTP interface: content under /c/, status
// under /api/status, and Prometheus metrics under /metrics; every request
// goes to the access log when there is one. RunDaemon puts the probes
// (/healthz, /readyz) in front of it.
func (p *Peer) Gateway() http.Handler {
	mux := http.NewServeMux()
	p.liveRoutes(mux)
	mux.HandleFunc("GET /c/{id}/{path...}", p.gw.bounded(p.serveContent))
	mux.HandleFunc("HEAD /c/{id}/{path...}", p.gw.bounded(p.serveContent))
	mux.HandleFunc("GET /api/status", p.serveStatus)
	mux.HandleFunc("GET /api/manifest/{id}", p.serveManifest)
	mux.HandleFunc("GET /api/roots/{id}/{page}", p.serveRootPage)
	mux.Handle("GET /metrics", p.metricsHandler())
	return p.cfg.AccessLog.Wrap("gateway", withCORS(mux, p.cfg.StatusOrigins))
}

// serveContent streams a file (or a byte range of it) in order, each chunk
// as soon as it is verified, from the swarm, the cache or the origin. It
// fetches only what the request covers, plus the read-ahead window of the
// prefetch policy; a HEAD fetches nothing but the manifest.
func (p *Peer) serveContent(w http.ResponseWriter, r *http.Request) {
	id, err := core.ParseContentID(r.PathValue("id"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pf, err := requestPrefetch(r, p.cfg.Prefetch)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !p.authContent(w, r, id) {
		return
	}
	join := p.Join
	switch {
	case pf == PrefetchAll:
		join = p.JoinAll
	case isPlaylistPath(r.PathValue("path")):
		join = p.joinPlayback // a player starting
	}
	sess, err := join(r.Context(), id)
	if err != nil {
		code := http.StatusBadGateway
		switch {
		case errors.Is(err, manifest.ErrRevoked):
			code = http.StatusGone // revoked by its publisher: never coming back
		case errors.Is(err, manifest.ErrUntrusted) || errors.Is(err, manifest.ErrBadSignature):
			code = http.StatusForbidden
		case errors.Is(err, cdn.ErrNotFound):
			code = http.StatusNotFound // the origin has no such content
		}
		httpError(w, err, code)
		return
	}
	c := sess.Content()
	fi := -1
	for k, f := range c.Manifest.Files {
		if f.Path == r.PathValue("path") {
			fi = k
		}
	}
	if fi < 0 {
		http.Error(w, fmt.Sprintf("no file %q in content %s", r.PathValue("path"), id), http.StatusNotFound)
		return
	}
	if p.serveMedia(w, r, sess, fi) {
		return
	}
	p.serveFile(w, r, sess, fi, fileType(c.Manifest.Files[fi]), p.readAhead(pf, c.Manifest.ChunkSize))
}

// serveFile answers a GET or HEAD (with Range, If-None-Match) for file fi
// as ctype, streamed with ahead chunks of read-ahead.
func (p *Peer) serveFile(w http.ResponseWriter, r *http.Request, sess *swarm.Session, fi int, ctype string, ahead int) {
	c := sess.Content()
	f, err := p.File(r.Context(), sess, fi) // its root is its ETag
	if err != nil {
		if r.Context().Err() == nil {
			httpError(w, fmt.Errorf("%s of content %s: %w", c.Manifest.Files[fi].Path, c.ID, err), http.StatusBadGateway)
		}
		return
	}
	start, end, partial, ok := parseRange(rangeHeader(r, fileETag(f)), f.Size)
	if !ok {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", f.Size))
		http.Error(w, "range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
		return
	}
	if r.Method == http.MethodHead || end <= start || notModified(r, f) {
		writeHeaders(w, r, f, ctype, start, end, partial)
		return
	}
	// The hash layer and the first chunk before the headers: failing here
	// (the origin down, the cache disk full) is still a clean error
	// status, not a cut body.
	err = p.Layer(r.Context(), sess, fi)
	if err == nil {
		err = p.awaitFirst(r.Context(), sess, fi, start, end, ahead)
	}
	if err != nil {
		if r.Context().Err() == nil {
			httpError(w, fmt.Errorf("%s of content %s: %w", f.Path, c.ID, err), http.StatusBadGateway)
		}
		return
	}
	buf := p.gw.buffer(w, r) // before the headers: a 503 is still possible
	if buf == nil {
		return
	}
	if !writeHeaders(w, r, f, ctype, start, end, partial) {
		p.gw.pool.put(buf)
		return
	}
	if err := p.stream(r.Context(), w, sess, fi, start, end, ahead, buf); err != nil {
		abortResponse(r, err)
	}
}

// abortResponse ends a response whose headers (and Content-Length) are out
// but whose body cannot be completed: the connection is cut, so the client
// sees a failed transfer, never a clean, short 200.
func abortResponse(r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client left
	}
	panic(http.ErrAbortHandler)
}

// requestPrefetch is the request's prefetch policy: ?prefetch= or the
// X-Shoal-Prefetch header, else the peer's.
func requestPrefetch(r *http.Request, def Prefetch) (Prefetch, error) {
	v := r.URL.Query().Get("prefetch")
	if v == "" {
		v = r.Header.Get(PrefetchHeader)
	}
	if v == "" {
		return def, nil
	}
	return ParsePrefetch(v)
}

// PrefetchHeader sets a gateway request's prefetch policy (none, window,
// all), like the ?prefetch= query parameter.
const PrefetchHeader = "X-Shoal-Prefetch"

// readAhead is the read-ahead window in chunks past the one being read.
func (p *Peer) readAhead(pf Prefetch, chunkSize int64) int {
	if pf == PrefetchNone {
		return 0
	}
	return int(max(1, p.cfg.ReadAhead/chunkSize))
}

// streamPatience is how soon a chunk a stream waits for is due: long enough
// for a connected peer to deliver it (the origin is asked only when none
// can), short enough that a client barely notices.
const streamPatience = time.Second

// maxChunkWait bounds how long a stream waits for one chunk that neither
// peers nor the origin deliver (the origin down, no peer holding it): the
// response is then cut, rather than left hanging until the client gives up.
const maxChunkWait = 30 * time.Second

// maxChunkRetries bounds how often a stream fetches again a chunk that left
// the cache (evicted, found corrupt) between arrival and reading.
const maxChunkRetries = 3

// notModified says whether a conditional request already holds f (its
// If-None-Match names f's ETag): it is answered 304, with nothing fetched.
func notModified(r *http.Request, f manifest.File) bool {
	inm := r.Header.Get("If-None-Match")
	return inm != "" && (strings.TrimSpace(inm) == "*" || strings.Contains(inm, f.Root.String()))
}

// writeHeaders answers the headers of a GET or HEAD for [start, end) of f
// and says whether a body should follow.
func writeHeaders(w http.ResponseWriter, r *http.Request, f manifest.File, ctype string, start, end int64, partial bool) bool {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Accept-Ranges", "bytes")
	h.Set("ETag", fileETag(f))
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	if notModified(r, f) {
		w.WriteHeader(http.StatusNotModified)
		return false
	}
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, f.Size))
		w.WriteHeader(http.StatusPartialContent)
	}
	return r.Method != http.MethodHead && end > start
}

// stream writes bytes [start, end) of file fi in order, each chunk as soon
// as it is verified, from the swarm, the cache or the origin. It returns
// nil once every byte is written. What it fetches follows the reader: an
// Interest covers the chunk being read and the next ahead chunks (never
// past end), and moves as the client takes the bytes; chunks in that
// window are pinned in the cache so a small quota cannot evict them before
// they are sent. A chunk that leaves the cache anyway is fetched again.
//
// Bytes go out in slices of the gateway's buffers, whatever the chunk
// size: buf (from gatewayBounds.buffer, given back to the pool on return)
// and up to gatewayBufsPerResponse-1 more while the pool has room.
func (p *Peer) stream(ctx context.Context, w io.Writer, sess *swarm.Session, fi int, start, end int64, ahead int, buf []byte) error {
	c := sess.Content()
	pool := p.gw.pool
	// Every buffer this response holds is in bufs or in pieces; held
	// counts them (the reader goroutine's, read by the writer once pieces
	// is closed).
	bufs := make(chan []byte, gatewayBufsPerResponse)
	bufs <- buf
	held := 1
	defer func() {
		for range held {
			pool.put(<-bufs)
		}
	}()
	if err := p.Layer(ctx, sess, fi); err != nil {
		return err
	}
	cs := c.Manifest.ChunkSize
	base := c.FileChunk(fi, 0)
	first, last := c.FileChunk(fi, int(start/cs)), c.FileChunk(fi, int((end-1)/cs))
	// A reader goroutine waits for, reads and verifies chunks, and reads
	// them in slices a few buffers ahead of the one being written, so disk,
	// hashing and the socket overlap.
	type piece struct {
		buf   []byte
		chunk int  // the chunk the bytes are from
		last  bool // its last slice in the response
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pieces := make(chan piece, gatewayBufsPerResponse)
	in := sess.Want()
	pins := newPinSet(p.cache.chunks, c)
	// next is a buffer to read into: a free one of ours, else a new one
	// from the pool if it has room, else ours once the writer is done
	// with it.
	next := func() ([]byte, error) {
		select {
		case b := <-bufs:
			return b, nil
		default:
		}
		if held < gatewayBufsPerResponse {
			if b := pool.tryGet(); b != nil {
				held++
				return b, nil
			}
		}
		select {
		case b := <-bufs:
			return b, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var readErr error // set before pieces is closed
	go func() {
		defer close(pieces)
		defer in.Release()
		for i := first; i <= last; i++ {
			hi := min(last+1, i+1+ahead)
			in.Set(swarm.Range{From: i, To: hi})
			pins.hold(i, hi)
			b, err := next()
			if err != nil {
				readErr = err
				return
			}
			ch, err := p.openChunk(ctx, sess, i, hi, b)
			if err != nil {
				bufs <- b
				readErr = err
				return
			}
			off := int64(i-base) * cs // the chunk's offset in the file
			from, to := max(start-off, 0), min(end-off, ch.Size())
			for o := from; o < to; {
				if b == nil {
					if b, err = next(); err != nil {
						break
					}
				}
				var n int
				n, err = ch.ReadAt(b[:min(int64(len(b)), to-o)], o)
				if err != nil {
					bufs <- b
					err = fmt.Errorf("%s: %w", c.Describe(i), err)
					break
				}
				o += int64(n)
				select {
				case pieces <- piece{b[:n], i, o >= to}:
				case <-ctx.Done():
					bufs <- b
					err = ctx.Err()
				}
				if err != nil {
					break
				}
				b = nil
			}
			ch.Close()
			if err != nil {
				readErr = err
				return
			}
		}
	}()
	var writeErr error
	for pc := range pieces {
		if writeErr == nil {
			_, writeErr = w.Write(pc.buf)
			if writeErr != nil {
				cancel() // the client went away: let the reader finish
			}
		}
		if pc.last {
			pins.release(pc.chunk)
		}
		bufs <- pc.buf[:cap(pc.buf)]
	}
	pins.releaseAll()
	if writeErr != nil {
		return writeErr
	}
	return readErr
}

// httpError answers a failure to deliver content: 503 when the cache
// disk cannot take chunks (it passes once space returns), else code.
func httpError(w http.ResponseWriter, err error, code int) {
	msg := err.Error()
	switch {
	case errors.Is(err, store.ErrWriteFailed):
		code = http.StatusServiceUnavailable
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		code = http.StatusServiceUnavailable // a manifest or hash layer that did not fit
		msg = "cache disk full: " + msg
	}
	http.Error(w, strings.ReplaceAll(msg, "\n", " "), code)
}

// awaitFirst waits for the first chunk of bytes [start, end) of file fi,
// under the Interest the stream will hold (that chunk and ahead more).
func (p *Peer) awaitFirst(ctx context.Context, sess *swarm.Session, fi int, start, end int64, ahead int) error {
	c := sess.Content()
	cs := c.Manifest.ChunkSize
	first, last := c.FileChunk(fi, int(start/cs)), c.FileChunk(fi, int((end-1)/cs))
	if sess.Has(first) {
		return nil
	}
	hi := min(last+1, first+1+ahead)
	in := sess.Want(swarm.Range{From: first, To: hi})
	defer in.Release()
	return p.awaitChunk(ctx, sess, first, hi)
}

// awaitChunk waits for chunk i, due shortly (a peer that can deliver
// within streamPatience is asked rather than the origin), the rest of the
// window [i, hi) a little after; at most maxChunkWait.
func (p *Peer) awaitChunk(ctx context.Context, sess *swarm.Session, i, hi int) error {
	if sess.Has(i) {
		return nil
	}
	sess.Prioritize(i, min(hi, i+lookahead), time.Now().Add(streamPatience), 200*time.Millisecond)
	wctx, cancel := context.WithTimeout(ctx, maxChunkWait)
	defer cancel()
	err := sess.WaitChunk(wctx, i)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%s: neither peers nor the origin delivered it within %v", sess.Content().Describe(i), maxChunkWait)
	}
	return err
}

// openChunk waits for chunk i (due now, the rest of the window shortly
// after) and opens it in the cache, verified through scratch. A chunk that
// left the cache between arrival and opening is fetched again, up to
// maxChunkRetries.
func (p *Peer) openChunk(ctx context.Context, sess *swarm.Session, i, hi int, scratch []byte) (*store.Chunk, error) {
	c := sess.Content()
	var err error
	for range maxChunkRetries + 1 {
		if err := p.awaitChunk(ctx, sess, i, hi); err != nil {
			return nil, err
		}
		var ch *store.Chunk
		if ch, err = p.cache.chunks.Open(c.Hash(i), scratch); err == nil {
			return ch, nil
		}
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrCorrupt) {
			break
		}
		// The store's removal notice has made the session forget it: the
		// next round fetches it again.
		p.log.Warn("gateway: chunk left the cache before it was sent; fetching it again", "chunk", c.Describe(i), "err", err)
		sess.Forget(i)
	}
	return nil, fmt.Errorf("%s: %w", c.Describe(i), err)
}

// parseRange handles one "bytes=" range (the form players and download
// tools send). Multiple ranges are answered with the whole file.
func parseRange(hdr string, size int64) (start, end int64, partial, ok bool) {
	if hdr == "" || !strings.HasPrefix(hdr, "bytes=") || strings.Contains(hdr, ",") {
		return 0, size, false, true
	}
	a, b, found := strings.Cut(strings.TrimPrefix(hdr, "bytes="), "-")
	if !found {
		return 0, size, false, true
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false, false
		}
		return max(size-n, 0), size, true, size > 0
	default:
		s, err := strconv.ParseInt(a, 10, 64)
		if err != nil || s < 0 || s >= size {
			return 0, 0, false, false
		}
		e := size - 1
		if b != "" {
			if e, err = strconv.ParseInt(b, 10, 64); err != nil || e < s {
				return 0, 0, false, false
			}
			e = min(e, size-1)
		}
		return s, e + 1, true, true
	}
}

// SwarmStatus is one swarm in /api/status.
type SwarmStatus struct {
	Content         string  `json:"content"`
	Name            string  `json:"name"`
	Chunks          int     `json:"chunks"`
	Have            int     `json:"have"`
	Complete        bool    `json:"complete"`
	Peers           int     `json:"peers"`
	BytesFromPeers  int64   `json:"bytes_from_peers"`
	BytesFromOrigin int64   `json:"bytes_from_origin"`
	BytesUploaded   int64   `json:"bytes_uploaded"`
	OffloadRatio    float64 `json:"offload_ratio"`
	// PeerDataReceived and OriginDataReceived are the chunk bytes peers
	// and the origin sent, duplicates included: what the download carried,
	// where BytesFromPeers and BytesFromOrigin count first copies.
	PeerDataReceived   int64 `json:"peer_data_received"`
	OriginDataReceived int64 `json:"origin_data_received"`
	BadChunks          int64 `json:"bad_chunks"`
	Bans               int64 `json:"bans"`
	MinAvailability    int   `json:"min_availability"`
	RareChunks         int   `json:"rare_chunks"`
	// HaveFrames is the frames announcing chunks sent to peers and Haves
	// the announcements they carried: one frame carries every chunk
	// received since the writer to that peer last ran.
	HaveFrames int64 `json:"have_frames"`
	Haves      int64 `json:"haves"`
	// Mode is the swarm's P2P mode (on, leech-only, off) and ModeWhy the
	// policy rules or local flags that made it stricter than on.
	Mode    string   `json:"mode"`
	ModeWhy []string `json:"mode_why,omitempty"`
}

// Status is the body of /api/status.
type Status struct {
	Peer            string        `json:"peer"`
	Addrs           []string      `json:"addrs"`
	Swarms          []SwarmStatus `json:"swarms"`
	BytesFromPeers  int64         `json:"bytes_from_peers"`
	BytesFromOrigin int64         `json:"bytes_from_origin"`
	BytesUploaded   int64         `json:"bytes_uploaded"`
	OffloadRatio    float64       `json:"offload_ratio"`
	// Playbacks are the gateway's playback sessions (media contents only).
	Playbacks []PlaybackStatus `json:"playbacks"`
	// LiveChannels are the live channels the gateway follows.
	LiveChannels []LiveChannelStatus `json:"live_channels"`
	// Discovery counts the peers each source named and connected.
	Discovery DiscoveryStatus `json:"discovery"`
	// Conns says, for each peer (or relay) connected now, how the
	// connection was formed: direct, hole-punched or relayed.
	Conns map[string]netx.ConnKind `json:"conns"`
	// Policy is the operator policy held and what it decides here.
	Policy PolicyStatus `json:"policy"`
}

// Status reports every swarm.
func (p *Peer) Status() Status {
	st := Status{Peer: string(p.ID()), Addrs: p.Addrs(), Swarms: []SwarmStatus{}, Discovery: p.discoveryStatus()}
	for _, s := range p.Sessions() {
		x := s.Stats()
		c := s.Content()
		st.Swarms = append(st.Swarms, SwarmStatus{
			Content: c.ID.String(), Name: c.Manifest.Name, Chunks: x.Chunks, Have: x.Have, Complete: x.Complete,
			Peers: x.Peers, BytesFromPeers: x.BytesFromPeers, BytesFromOrigin: x.BytesFromOrigin,
			BytesUploaded: x.BytesUploaded, OffloadRatio: offload(x.BytesFromPeers, x.BytesFromOrigin),
			BadChunks: x.BadChunks, Bans: x.Bans, MinAvailability: x.MinAvailability, RareChunks: x.RareChunks,
			HaveFrames: x.HaveFrames, Haves: x.Haves, Mode: s.Mode().String(),
			PeerDataReceived: x.PeerDataReceived, OriginDataReceived: x.OriginDataReceived,
		})
		if d, ok := p.pol.sessionDecision(c.ID); ok {
			st.Swarms[len(st.Swarms)-1].ModeWhy = d.Why
		}
		st.BytesFromPeers += x.BytesFromPeers
		st.BytesFromOrigin += x.BytesFromOrigin
		st.BytesUploaded += x.BytesUploaded
	}
	st.OffloadRatio = offload(st.BytesFromPeers, st.BytesFromOrigin)
	st.Playbacks = p.plays.status()
	st.LiveChannels = p.live.status()
	st.Policy = p.pol.status()
	st.Conns = map[string]netx.ConnKind{}
	for id, k := range netx.ConnKinds(p.host) {
		st.Conns[string(id)] = k
	}
	return st
}

// offload is the share of downloaded bytes that came from peers.
func offload(peers, origin int64) float64 {
	if peers+origin == 0 {
		return 0
	}
	return float64(peers) / float64(peers+origin)
}

func (p *Peer) serveStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(p.Status())
}
