// Package agent is the receiver role: the one-shot fetch behind `shoal get`
// and (with the swarm) the peer daemon with its local HTTP gateway. It
// verifies every byte against the publisher's signed manifest before it is
// written, kept or served.
package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/store"
	"github.com/shoal-cdn/shoal/swarm"
)

// Errors of a fetch.
var (
	ErrVerify   = errors.New("verification failed")
	ErrNoSuch   = errors.New("no such file in the content")
	ErrBadInput = errors.New("bad get input")
)

// ChunkSource is where missing chunks come from: the origin's HTTP client,
// and with the swarm, the session that asks peers first. Errors name the
// source so a failure says where the bad bytes came from.
type ChunkSource interface {
	Chunk(ctx context.Context, h core.Hash, size int64) ([]byte, error)
}

// GetConfig is what one `shoal get` needs.
type GetConfig struct {
	Origin   string           // origin or CDN URL of the layout root
	Trust    *manifest.KeySet // the publisher keys the manifest must be signed by (any one)
	Target   string           // CONTENT_ID or CONTENT_ID/PATH (a file or a directory)
	Out      string           // output file or directory; default: the file's base name or the content name
	CacheDir string           // receiver cache; verified chunks stay here so a rerun resumes
	Parallel int              // chunk requests in flight; default 8
	HTTP     *http.Client     // optional
	Progress io.Writer        // optional: progress bar (terminal) or lines (pipe)
	Logger   *slog.Logger
	// Source overrides where chunks come from (default: the origin, or the
	// swarm when Tracker is set).
	Source ChunkSource

	// Tracker, when set, makes the get a swarm member: chunks come from
	// peers first (the origin fills what they cannot), and it serves peers
	// while it downloads and for SeedFor after.
	Tracker string
	SeedFor time.Duration
	Swarm   PeerConfig // network settings for swarm mode (Listen, UploadLimit, Region, Host)
}

// GetResult reports a finished fetch.
type GetResult struct {
	ID         core.ContentID
	Out        string
	Files      int
	Bytes      int64
	FromCache  int64 // bytes found verified in the cache (or in what an interrupted run left)
	FromSource int64 // bytes fetched
	// Swarm mode only:
	FromPeers, FromOrigin, Uploaded int64
	// Via is the gateway of the peer daemon the get went through, if one
	// runs on the cache directory.
	Via string
}

// sessionSource waits for the swarm to deliver a chunk (verified and stored
// by the session) and reads it from the cache.
type sessionSource struct {
	sess *swarm.Session
	c    *cache
}

func (s sessionSource) Chunk(ctx context.Context, h core.Hash, size int64) ([]byte, error) {
	idx := s.sess.Content().Indexes(h)
	if len(idx) == 0 {
		return nil, fmt.Errorf("chunk %s is not in the content", h.Short())
	}
	// Pinned from before it arrives until read, so a cache quota smaller
	// than the content cannot evict it in between.
	s.c.chunks.Pin(h)
	defer s.c.chunks.Unpin(h)
	var err error
	for range maxChunkRetries + 1 {
		if err = s.sess.WaitChunk(ctx, idx[0]); err != nil {
			return nil, err
		}
		var b []byte
		if b, err = s.c.chunks.Get(h); err == nil {
			return b, nil
		}
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrCorrupt) {
			break
		}
		s.sess.Forget(idx[0]) // fetched again on the next round
	}
	return nil, err
}

func (s sessionSource) String() string { return "the swarm" }

func (s sessionSource) index(h core.Hash) int {
	if idx := s.sess.Content().Indexes(h); len(idx) > 0 {
		return idx[0]
	}
	return -1
}

func (s sessionSource) held(idx []int, held []bool) { s.sess.Held(idx, held) }
func (s sessionSource) arrived() <-chan struct{}    { return s.sess.Arrived() }

// arrivalSource is a ChunkSource whose chunks arrive in an order of their
// own (a swarm fetches rarest first): the fetcher takes each as it comes
// rather than waiting for them in file order.
type arrivalSource interface {
	ChunkSource
	// index is the content's index of a chunk with hash h (-1: none).
	index(h core.Hash) int
	// held sets held[k] to whether chunk idx[k] has arrived.
	held(idx []int, held []bool)
	// arrived is closed when the next chunk arrives or the source can
	// deliver no more (stalled, closed).
	arrived() <-chan struct{}
}

var _ arrivalSource = sessionSource{}

// cachingSource is a ChunkSource whose chunks are already verified and in
// the cache when Chunk returns (the swarm session stores what it receives),
// so the fetcher does not store them again: Put would hash each one anew.
type cachingSource interface {
	ChunkSource
	cachesChunks()
}

func (sessionSource) cachesChunks() {}

var _ cachingSource = sessionSource{}

// Target names what to fetch: a content and optionally a path inside it.
type Target struct {
	ID   core.ContentID
	Path string // "" for the whole content
}

// ParseTarget parses CONTENT_ID[/PATH].
func ParseTarget(s string) (Target, error) {
	idStr, p, _ := strings.Cut(s, "/")
	id, err := core.ParseContentID(idStr)
	if err != nil {
		return Target{}, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	p = strings.TrimSuffix(p, "/")
	if p != "" {
		if err := manifest.CheckPath(p); err != nil {
			return Target{}, fmt.Errorf("%w: %v", ErrBadInput, err)
		}
	}
	return Target{ID: id, Path: p}, nil
}

// selectFiles returns the files under t.Path (the file itself, or everything
// in that directory) and whether t.Path named a single file.
func selectFiles(m *manifest.Manifest, p string) ([]manifest.File, bool, error) {
	if p == "" {
		// A content of one file is fetched as that file, not a directory.
		return m.Files, len(m.Files) == 1, nil
	}
	if f, ok := m.File(p); ok {
		return []manifest.File{f}, true, nil
	}
	var out []manifest.File
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, p+"/") {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, false, fmt.Errorf("%w: %q in %q", ErrNoSuch, p, m.Name)
	}
	return out, false, nil
}

// Get fetches a content (or one file or directory of it), verifying every
// chunk against the signed manifest before writing it. The output appears
// atomically: on any failure nothing is left at Out.
func Get(ctx context.Context, cfg GetConfig) (GetResult, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	t, err := ParseTarget(cfg.Target)
	if err != nil {
		return GetResult{}, err
	}
	if cfg.Source == nil {
		if gw, ok := runningDaemon(cfg.CacheDir); ok {
			return viaDaemon(ctx, cfg, t, gw)
		}
	}
	var (
		origin *cdn.Client
		c      *cache
		src    = cfg.Source
		sess   *swarm.Session
		// swarmLayers gives the hash layers the swarm session loaded.
		swarmLayers func(manifest.File) manifest.HashLayer
	)
	if cfg.Tracker != "" || dhtEnabled(cfg.Swarm.DHT) {
		pc := cfg.Swarm
		pc.CacheDir, pc.Tracker, pc.Origin, pc.Trust = cfg.CacheDir, cfg.Tracker, cfg.Origin, cfg.Trust
		if pc.Logger == nil {
			pc.Logger = cfg.Logger
		}
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		p, err := NewPeer(pctx, pc)
		if err != nil {
			if gw, ok := daemonStarting(ctx, cfg.CacheDir, err); ok {
				return viaDaemon(ctx, cfg, t, gw)
			}
			return GetResult{}, lockedCache(err)
		}
		defer p.Close()
		defer cancel()        // runs before p.Close: stop the swarm first
		p.RevocationsNow(ctx) // refuse what was revoked, not just what the poll loop saw
		join := p.Join
		if t.Path == "" {
			join = p.JoinAll // the whole content: tell peers we fetch it all
		}
		if sess, err = join(ctx, t.ID); err != nil {
			return GetResult{}, err
		}
		origin, c = p.origin, p.cache
		// Only the files asked for: their hash layers, then their chunks.
		cont := sess.Content()
		files, _, err := selectFiles(cont.Manifest, t.Path)
		if err != nil {
			return GetResult{}, err
		}
		idx := make([]int, 0, len(files))
		for fi, f := range cont.Manifest.Files {
			if slices.ContainsFunc(files, func(g manifest.File) bool { return g.Path == f.Path }) {
				idx = append(idx, fi)
			}
		}
		ranges := make([]swarm.Range, 0, len(idx))
		for _, fi := range idx {
			a, b := cont.FileChunks(fi)
			ranges = append(ranges, swarm.Range{From: a, To: b})
		}
		in := sess.Want(ranges...)
		defer in.Release()
		if j := p.joinedOf(t.ID); j != nil {
			if err := p.layers(ctx, j, idx); err != nil {
				return GetResult{}, err
			}
		}
		swarmLayers = func(f manifest.File) manifest.HashLayer {
			for fi, g := range cont.Manifest.Files {
				if g.Path == f.Path {
					return cont.Layer(fi)
				}
			}
			return nil
		}
		if src == nil {
			src = sessionSource{sess, c}
		}
	} else {
		var err error
		if origin, err = cdn.New(cdn.Config{BaseURL: cfg.Origin, HTTP: cfg.HTTP}); err != nil {
			return GetResult{}, fmt.Errorf("%w: %v", ErrBadInput, err)
		}
		defer origin.Close()
		if c, err = openCache(cfg.CacheDir); err != nil {
			if gw, ok := daemonStarting(ctx, cfg.CacheDir, err); ok {
				return viaDaemon(ctx, cfg, t, gw)
			}
			return GetResult{}, lockedCache(err)
		}
		defer c.Close()
		if err := revokedAtOrigin(ctx, origin, cfg.Trust, t.ID); err != nil {
			audit.OrDiscard(cfg.Swarm.Audit).Record(audit.Event{Time: time.Now(), Kind: audit.KindRevoked, Content: t.ID.String(), Reason: "get refused: " + err.Error()})
			return GetResult{}, err
		}
	}
	var m *manifest.Manifest
	if sess != nil {
		m = sess.Content().Manifest // perhaps from peers: the origin may be down
	} else if m, err = c.manifest(ctx, origin, t.ID, cfg.Trust); err != nil {
		return GetResult{}, err
	}
	files, single, err := selectFiles(m, t.Path)
	if err != nil {
		return GetResult{}, err
	}
	if swarmLayers == nil {
		files, err = withRoots(m, files, func(roots *manifest.RootTable, page int) error {
			return c.rootPage(ctx, origin, m, roots, page)
		})
		if err != nil {
			return GetResult{}, err
		}
	}
	layers := make([]manifest.HashLayer, len(files))
	for i, f := range files {
		if swarmLayers != nil {
			layers[i] = swarmLayers(f)
			continue
		}
		if layers[i], err = c.hashLayer(ctx, origin, f); err != nil {
			return GetResult{}, err
		}
	}
	res := GetResult{ID: t.ID, Files: len(files)}
	for _, f := range files {
		res.Bytes += f.Size
	}
	out := outName(cfg.Out, m, t, files, single)
	res.Out = out
	w, err := newOutput(out, single)
	if err != nil {
		return GetResult{}, err
	}
	defer w.abort() // no-op after commit

	if src == nil {
		src = origin
	}
	prog := newProgress(cfg.Progress, res.Bytes)
	defer prog.stop()
	f := &fetcher{cache: c, src: src, out: w, prog: prog, chunkSize: m.ChunkSize, base: t.Path}
	if err := f.run(ctx, files, layers, single, cfg.Parallel); err != nil {
		return GetResult{}, err
	}
	if err := w.commit(); err != nil {
		return GetResult{}, err
	}
	prog.finish()
	res.FromCache, res.FromSource = f.fromCache.Load(), f.fromSource.Load()
	if sess != nil {
		st := sess.Stats()
		res.FromPeers, res.FromOrigin, res.Uploaded = st.BytesFromPeers, st.BytesFromOrigin, st.BytesUploaded
		// The fetcher takes chunks once they have arrived, so it finds
		// them in the cache: what the session fetched is what came from
		// the source.
		res.FromSource = min(res.Bytes, st.BytesFromPeers+st.BytesFromOrigin)
		res.FromCache = res.Bytes - res.FromSource
		if cfg.SeedFor > 0 {
			cfg.Logger.Info("seeding", "for", cfg.SeedFor)
			t := time.NewTimer(cfg.SeedFor)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			res.Uploaded = sess.Stats().BytesUploaded
		}
	}
	cfg.Logger.Info("fetched", "id", t.ID, "out", out, "bytes", res.Bytes, "from_cache", res.FromCache, "from_source", res.FromSource)
	return res, nil
}

// outName is where a get writes: out if given, else the file's base name,
// the directory's, or the content's name (its ID if the name is unusable).
func outName(out string, m *manifest.Manifest, t Target, files []manifest.File, single bool) string {
	switch {
	case out != "":
		return out
	case single:
		return path.Base(files[0].Path)
	case t.Path != "":
		return path.Base(t.Path)
	case manifest.CheckPath(m.Name) != nil || strings.Contains(m.Name, "/"):
		return t.ID.String()
	default:
		return m.Name
	}
}

// fetcher moves verified chunks from cache or source into the output.
type fetcher struct {
	cache     *cache
	src       ChunkSource
	out       *output
	prog      *progress
	chunkSize int64
	base      string // the requested directory, stripped from output paths

	fromCache, fromSource atomic.Int64
}

type chunkJob struct {
	file  manifest.File
	index int64
	hash  core.Hash
	dst   string
}

// rel is where file goes inside the output: "" for a single file, else its
// path below the requested directory.
func (f *fetcher) rel(file manifest.File, single bool) string {
	if single {
		return ""
	}
	return strings.TrimPrefix(file.Path, f.base+"/")
}

func (f *fetcher) run(ctx context.Context, files []manifest.File, layers []manifest.HashLayer, single bool, parallel int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, file := range files {
		if err := f.out.create(f.rel(file, single), file.Size); err != nil {
			return err
		}
	}
	jobs := make(chan chunkJob)
	var (
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := f.one(ctx, j); err != nil {
					fail(err)
				}
			}
		}()
	}
	var all []chunkJob
	for i, file := range files {
		rel := f.rel(file, single)
		for idx, h := range layers[i] {
			all = append(all, chunkJob{file: file, index: int64(idx), hash: h, dst: rel})
		}
	}
	if as, ok := f.src.(arrivalSource); ok && len(all) <= maxArrivalJobs {
		feedArrivals(ctx, jobs, all, as)
	} else {
		feedInOrder(ctx, jobs, all)
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func feedInOrder(ctx context.Context, jobs chan<- chunkJob, all []chunkJob) {
	for _, j := range all {
		select {
		case jobs <- j:
		case <-ctx.Done():
			return
		}
	}
}

// maxArrivalJobs bounds the chunks feedArrivals takes in arrival order: it
// rescans what is pending at every arrival, O(n²) over a content, which is
// cheap up to tens of thousands of chunks (10 GiB of 256 KiB chunks);
// beyond, chunks are taken in file order.
const maxArrivalJobs = 1 << 15

// feedArrivals hands out the jobs whose chunks have arrived, in file order
// among them, then waits for more: the output fills as the swarm delivers,
// so the first verified bytes are written (and reported) as soon as any
// chunk arrives. A wake-up that brings none of ours (the source stalled or
// closed) hands out the next job in file order, whose worker waits for it
// and reports why it cannot come.
func feedArrivals(ctx context.Context, jobs chan<- chunkJob, all []chunkJob, src arrivalSource) {
	pend := make([]int, len(all)) // positions in all, in file order
	idx := make([]int, len(all))
	for k := range all {
		pend[k], idx[k] = k, src.index(all[k].hash)
	}
	held := make([]bool, len(all))
	send := func(j chunkJob) bool {
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			return false
		}
	}
	woke := false
	for len(pend) > 0 {
		wake := src.arrived()
		src.held(idx[:len(pend)], held)
		rest, sent := 0, 0
		for k, pos := range pend {
			if held[k] {
				if !send(all[pos]) {
					return
				}
				sent++
				continue
			}
			pend[rest], idx[rest] = pos, idx[k]
			rest++
		}
		pend = pend[:rest]
		if sent == 0 && woke && len(pend) > 0 {
			if !send(all[pend[0]]) {
				return
			}
			pend, idx = pend[1:], idx[1:]
		}
		if len(pend) == 0 {
			return
		}
		select {
		case <-wake:
			woke = true
		case <-ctx.Done():
			return
		}
	}
}

// one gets a single chunk into the output: from the cache if it is there and
// still hashes right, otherwise from the source, verified before use.
func (f *fetcher) one(ctx context.Context, j chunkJob) error {
	size := core.ChunkLen(j.file.Size, f.chunkSize, j.index)
	off := j.index * f.chunkSize
	if data, err := f.cache.chunks.Get(j.hash); err == nil && int64(len(data)) == size && sha256.Sum256(data) == j.hash {
		f.fromCache.Add(size)
		f.prog.add(size)
		return f.out.writeAt(j.dst, data, off)
	}
	if data := f.out.earlier(j.dst, off, size); data != nil && sha256.Sum256(data) == j.hash {
		// Written by a run that was killed before it finished: no need
		// to fetch it again, nor to rewrite it.
		f.fromCache.Add(size)
		f.prog.add(size)
		return nil
	}
	data, err := f.src.Chunk(ctx, j.hash, size)
	if err != nil {
		return fmt.Errorf("chunk %d of %s: %w", j.index, j.file.Path, err)
	}
	if got := core.Hash(sha256.Sum256(data)); got != j.hash {
		return fmt.Errorf("%w: chunk %d of %s from %s: hash %s, want %s", ErrVerify, j.index, j.file.Path, sourceName(f.src, j.hash), got.Short(), j.hash.Short())
	}
	if _, stored := f.src.(cachingSource); !stored {
		if err := f.cache.chunks.Put(j.hash, data); err != nil {
			return fmt.Errorf("cache chunk %d of %s: %w", j.index, j.file.Path, err)
		}
	}
	f.fromSource.Add(size)
	f.prog.add(size)
	return f.out.writeAt(j.dst, data, off)
}

// sourceName says where a chunk came from, for error messages.
func sourceName(src ChunkSource, h core.Hash) string {
	if c, ok := src.(*cdn.Client); ok {
		return strings.TrimSuffix(c.BaseURL(), "/") + "/" + layout.ChunkPath(h)
	}
	if s, ok := src.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", src)
}

var _ ChunkSource = (*cdn.Client)(nil)
