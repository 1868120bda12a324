// Package publish is the publisher role: it turns files into signed,
// content-addressed chunks and writes them as a static origin layout (see
// package layout). It streams: memory stays bounded by a few chunk buffers
// whatever the input size, and identical chunks are written once.
package publish

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/media"
)

// ErrInput is returned for bad publish input (paths, names, chunk size).
var ErrInput = errors.New("bad publish input")

// Config is what one publish needs.
type Config struct {
	Key       ed25519.PrivateKey // publisher signing key
	Out       string             // origin layout directory; created if missing
	ChunkSize int64              // power of two, 16 KiB–16 MiB; 0 means core.DefaultChunkSize
	Name      string             // content name; default: the base name of the first path
	Paths     []string           // files and directories to publish
	Created   time.Time          // creation time; zero means now
	Workers   int                // hashing and writing goroutines; 0 means 4 × GOMAXPROCS
	Regions   []string           // manifest.Policy.Regions: where the content may be served; empty: anywhere
	// ManifestVersion is the manifest format to write: manifest.Version,
	// or manifest.VersionPaged to move the roots of multi-chunk files into
	// root pages (written under layout.RootPageDir), so that a receiver's
	// first request does not wait for every file's root. 0 means
	// manifest.Version.
	ManifestVersion int
	Logger          *slog.Logger
}

// Result describes a finished publish.
type Result struct {
	ID        core.ContentID
	Manifest  *manifest.Manifest
	Bytes     int64 // input bytes hashed
	Chunks    int64 // chunks in the content
	NewChunks int64 // chunks written (the rest were already in Out)
}

// Publish reads cfg.Paths, writes their chunks, hash layers, root pages (of
// a paged manifest) and the signed manifest into cfg.Out, and returns the content ID. The manifest is written
// last, after the chunks and hash layers are synced to disk, so an origin
// never serves a manifest whose chunks are missing.
func Publish(ctx context.Context, cfg Config) (Result, error) {
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = core.DefaultChunkSize
	}
	if err := core.CheckChunkSize(cfg.ChunkSize); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInput, err)
	}
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return Result{}, fmt.Errorf("%w: no publisher key", ErrInput)
	}
	if cfg.Workers <= 0 {
		// More workers than cores: each spends much of a chunk in file
		// system calls, and those should overlap with hashing.
		cfg.Workers = 4 * runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	inputs, err := collect(cfg.Paths)
	if err != nil {
		return Result{}, err
	}
	if cfg.Name == "" {
		cfg.Name = filepath.Base(filepath.Clean(cfg.Paths[0]))
	}
	md, audio, err := detectMedia(inputs)
	if err != nil {
		return Result{}, err
	}
	if cfg.Created.IsZero() {
		cfg.Created = time.Now()
	}
	switch cfg.ManifestVersion {
	case 0:
		cfg.ManifestVersion = manifest.Version
	case manifest.Version, manifest.VersionPaged:
	default:
		return Result{}, fmt.Errorf("%w: manifest version %d, want %d or %d", ErrInput, cfg.ManifestVersion, manifest.Version, manifest.VersionPaged)
	}
	for _, d := range []string{layout.ManifestDir, layout.HashLayerDir, layout.RootPageDir, layout.ChunkDir} {
		if err := os.MkdirAll(filepath.Join(cfg.Out, d), 0o755); err != nil {
			return Result{}, fmt.Errorf("publish: %w", err)
		}
	}
	p := &publisher{cfg: cfg, audio: audio, seen: make(map[core.Hash]bool), shards: make(map[string]bool)}
	m := &manifest.Manifest{
		Version:   manifest.Version,
		Name:      cfg.Name,
		Created:   cfg.Created.UTC().Truncate(time.Second),
		ChunkSize: cfg.ChunkSize,
		Hash:      manifest.HashSHA256,
		Media:     md,
	}
	if len(cfg.Regions) > 0 {
		if err := manifest.CheckRegions(cfg.Regions); err != nil {
			return Result{}, fmt.Errorf("%w: --region: %v", ErrInput, err)
		}
		m.Policy = &manifest.Policy{Regions: cfg.Regions}
	}
	res := Result{}
	for _, in := range inputs {
		f, err := p.file(ctx, in)
		if err != nil {
			return Result{}, err
		}
		m.Files = append(m.Files, f)
		res.Bytes += f.Size
		res.Chunks += f.Chunks
	}
	res.NewChunks = p.written
	if cfg.ManifestVersion == manifest.VersionPaged {
		for i, page := range m.PageRoots() {
			dst := filepath.Join(cfg.Out, filepath.FromSlash(layout.RootPagePath(m.RootPages[i])))
			if err := writeAtomic(dst, page, false); err != nil { // synced below with the chunks
				return Result{}, err
			}
		}
	}
	if err := syncDir(cfg.Out); err != nil {
		return Result{}, err
	}
	if err := m.Sign(cfg.Key); err != nil {
		return Result{}, err
	}
	enc, err := m.Encode()
	if err != nil {
		return Result{}, err
	}
	res.ID = core.ContentID(core.SumSHA256(enc))
	res.Manifest = m
	if err := writeAtomic(filepath.Join(cfg.Out, filepath.FromSlash(layout.ManifestPath(res.ID))), enc, true); err != nil {
		return Result{}, err
	}
	cfg.Logger.Info("published", "name", m.Name, "id", res.ID, "files", len(m.Files), "bytes", res.Bytes, "chunks", res.Chunks, "new_chunks", res.NewChunks)
	return res, nil
}

// publisher holds the state shared by one publish's files.
type publisher struct {
	cfg   Config
	audio map[string]bool // files of audio-only renditions

	mu      sync.Mutex
	seen    map[core.Hash]bool // guarded by mu: chunks known to be in Out
	shards  map[string]bool    // guarded by mu: chunk shard directories known to exist
	written int64              // guarded by mu: chunks this publish wrote
}

// job is one chunk on its way through the hashing workers.
type job struct {
	seq  int64
	buf  *[]byte
	n    int
	hash core.Hash
	err  error
}

// file hashes and stores one input file. A reader fills pooled buffers, the
// workers hash and write chunks in parallel, and this goroutine takes the
// results back in order to build the hash layer and Merkle root.
func (p *publisher) file(ctx context.Context, in input) (manifest.File, error) {
	cs := p.cfg.ChunkSize
	f := manifest.File{Path: in.path, MediaType: media.ContentType(in.path)}
	if p.audio[in.path] {
		f.MediaType = media.AudioContentType(in.path)
	}
	src, err := os.Open(in.src)
	if err != nil {
		return f, fmt.Errorf("%w: %v", ErrInput, err)
	}
	defer src.Close()

	layerTmp, err := os.CreateTemp(filepath.Join(p.cfg.Out, layout.HashLayerDir), ".tmp-*")
	if err != nil {
		return f, fmt.Errorf("publish: %w", err)
	}
	defer os.Remove(layerTmp.Name()) // no-op after the rename
	defer layerTmp.Close()
	layerW := bufio.NewWriterSize(layerTmp, 64<<10)

	// Buffers bound memory: at most nbuf chunks exist at once.
	// Two buffers per worker keep every worker busy while the reader fills
	// the next; more would only cost allocation and page faults.
	nbuf := min(2*p.cfg.Workers+2, max(4, int(96<<20/cs)))
	free := make(chan *[]byte, nbuf)
	for range nbuf {
		b := make([]byte, cs)
		free <- &b
	}
	jobs := make(chan *job, nbuf)
	done := make(chan *job, nbuf)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var readErr error
	go func() { // reader
		defer close(jobs)
		for seq := int64(0); ; seq++ {
			var buf *[]byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				readErr = ctx.Err()
				return
			}
			n, err := io.ReadFull(src, *buf)
			if n == 0 && (err == io.EOF || err == nil) {
				return
			}
			if err != nil && err != io.ErrUnexpectedEOF {
				readErr = fmt.Errorf("publish: read %s: %w", in.src, err)
				return
			}
			jobs <- &job{seq: seq, buf: buf, n: n}
			if err == io.ErrUnexpectedEOF {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range p.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				data := (*j.buf)[:j.n]
				j.hash = sha256.Sum256(data)
				j.err = p.storeChunk(j.hash, data)
				done <- j
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	var rb manifest.RootBuilder
	pending := map[int64]*job{}
	var next int64
	var firstErr error
	for j := range done {
		pending[j.seq] = j
		for pj, ok := pending[next]; ok; pj, ok = pending[next] {
			delete(pending, next)
			next++
			f.Size += int64(pj.n)
			if pj.err != nil && firstErr == nil {
				firstErr = pj.err
				cancel()
			}
			if firstErr == nil {
				rb.Add(pj.hash)
				_, firstErr = layerW.Write(pj.hash[:])
			}
			free <- pj.buf
		}
	}
	if firstErr == nil {
		firstErr = readErr
	}
	if firstErr != nil {
		return f, firstErr
	}
	if f.Size != in.size {
		return f, fmt.Errorf("%w: %s changed while publishing (%d bytes, then %d)", ErrInput, in.src, in.size, f.Size)
	}
	f.Chunks = rb.Len()
	f.Root = rb.Root()
	if core.ChunkCount(f.Size, cs) != f.Chunks {
		return f, fmt.Errorf("publish: %s: %d chunks for %d bytes", in.src, f.Chunks, f.Size)
	}
	if err := layerW.Flush(); err != nil {
		return f, fmt.Errorf("publish: hash layer of %s: %w", in.path, err)
	}
	if err := layerTmp.Close(); err != nil {
		return f, fmt.Errorf("publish: hash layer of %s: %w", in.path, err)
	}
	dst := filepath.Join(p.cfg.Out, filepath.FromSlash(layout.HashLayerPath(f.Root)))
	if err := os.Chmod(layerTmp.Name(), 0o644); err != nil {
		return f, err
	}
	if err := os.Rename(layerTmp.Name(), dst); err != nil {
		return f, fmt.Errorf("publish: hash layer of %s: %w", in.path, err)
	}
	return f, nil
}

// storeChunk writes one chunk under its hash unless it is already there.
func (p *publisher) storeChunk(h core.Hash, data []byte) error {
	p.mu.Lock()
	if p.seen[h] {
		p.mu.Unlock()
		return nil
	}
	p.seen[h] = true
	p.mu.Unlock()
	dst := filepath.Join(p.cfg.Out, filepath.FromSlash(layout.ChunkPath(h)))
	if st, err := os.Stat(dst); err == nil && st.Size() == int64(len(data)) {
		return nil
	}
	if err := p.shard(filepath.Dir(dst)); err != nil {
		return err
	}
	if err := writeAtomic(dst, data, false); err != nil {
		return err
	}
	p.mu.Lock()
	p.written++
	p.mu.Unlock()
	return nil
}

// shard makes a chunk shard directory once per publish.
func (p *publisher) shard(dir string) error {
	p.mu.Lock()
	done := p.shards[dir]
	p.mu.Unlock()
	if done {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	p.mu.Lock()
	p.shards[dir] = true
	p.mu.Unlock()
	return nil
}

// writeAtomic writes data to a temporary file beside dst and renames it into
// place, so dst is never seen half written. With sync it also fsyncs the file
// and the directory; chunk writes skip that and are synced in one go by
// syncDir before the manifest that names them is written.
func writeAtomic(dst string, data []byte, sync bool) error {
	// Created with its final mode (not CreateTemp's 0600 and a chmod): a
	// syscall less per chunk.
	tmp := filepath.Join(filepath.Dir(dst), fmt.Sprintf(".tmp-%016x", rand.Uint64()))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err == nil && sync {
		err = syncDir(filepath.Dir(dst))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("publish: write %s: %w", dst, err)
	}
	return nil
}

// syncDir flushes the whole file system holding dir (syncfs), which covers
// every chunk and hash layer written so far in one call.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("publish: sync %s: %w", dir, err)
	}
	return nil
}
