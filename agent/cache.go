package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/store"
)

// cache is a receiver's cache directory: verified chunks in a store, plus the
// manifests, root pages and hash layers they belong to, kept in the origin's own layout
// so a cache can be served as an origin.
type cache struct {
	dir    string
	chunks *store.Store
}

// DefaultCacheDir is $XDG_CACHE_HOME/shoal (usually ~/.cache/shoal).
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "shoal-cache")
	}
	return filepath.Join(d, "shoal")
}

func openCache(dir string) (*cache, error) { return openCacheWith(dir, 0, false, nil) }

// openCacheWith opens the cache with a chunk quota (0: none) and, for a peer
// that serves what it holds, verify-on-read; the store logs to log (nil:
// nowhere).
func openCacheWith(dir string, quota int64, verify bool, log *slog.Logger) (*cache, error) {
	if dir == "" {
		dir = DefaultCacheDir()
	}
	for _, d := range []string{layout.ManifestDir, layout.HashLayerDir, layout.RootPageDir, layout.RevocationDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	s, err := store.Open(store.Config{Dir: filepath.Join(dir, layout.ChunkDir), Quota: quota, VerifyOnRead: verify, NoSync: verify, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	return &cache{dir: dir, chunks: s}, nil
}

func (c *cache) Close() error { return c.chunks.Close() }

func (c *cache) file(p string) string { return filepath.Join(c.dir, filepath.FromSlash(p)) }

// manifest returns the verified manifest of id, from the cache or the origin.
// A cached copy is verified again: the cache is not trusted either.
func (c *cache) manifest(ctx context.Context, origin *cdn.Client, id core.ContentID, trust manifest.Trust) (*manifest.Manifest, error) {
	p := c.file(layout.ManifestPath(id))
	if b, err := os.ReadFile(p); err == nil {
		if m, err := manifest.DecodeTrusted(b, id, trust); err == nil {
			return m, nil
		}
		os.Remove(p)
	}
	b, err := origin.Manifest(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", id, err)
	}
	m, err := manifest.DecodeTrusted(b, id, trust)
	if err != nil {
		return nil, fmt.Errorf("manifest %s from %s: %w", id, origin.BaseURL(), err)
	}
	if err := writeFileAtomic(p, b); err != nil {
		return nil, err
	}
	return m, nil
}

// hashLayer returns the verified hash layer of f, from the cache or the
// origin; a file of at most one chunk needs neither. f carries its root
// (of a paged manifest: the one its root page gives).
func (c *cache) hashLayer(ctx context.Context, origin *cdn.Client, f manifest.File) (manifest.HashLayer, error) {
	size := f.Chunks * core.HashSize
	p := c.file(layout.HashLayerPath(f.Root))
	if l, ok := c.cachedLayer(f); ok {
		return l, nil
	}
	switch f.Chunks {
	case 0:
		return manifest.HashLayer{}, nil
	case 1:
		return manifest.HashLayer{f.Root}, nil // a one-leaf tree's root is the leaf: nothing to fetch
	}
	b, err := origin.HashLayer(ctx, f.Root, size)
	if err != nil && !errors.Is(err, cdn.ErrBadResponse) {
		return nil, fmt.Errorf("hash layer of %s: %w", f.Path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: hash layer of %s: %v", ErrVerify, f.Path, err)
	}
	l, err := manifest.ParseHashLayer(f, b)
	if err != nil {
		return nil, fmt.Errorf("%w: hash layer of %s from %s: %v", ErrVerify, f.Path, origin.BaseURL(), err)
	}
	if err := writeFileAtomic(p, b); err != nil {
		return nil, err
	}
	return l, nil
}

// cachedLayer returns f's hash layer if the cache holds a copy that
// reproduces its signed root; a copy that does not is removed.
func (c *cache) cachedLayer(f manifest.File) (manifest.HashLayer, bool) {
	p := c.file(layout.HashLayerPath(f.Root))
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	l, err := manifest.ParseHashLayer(f, b)
	if err != nil {
		os.Remove(p)
		return nil, false
	}
	return l, true
}

// has reports whether the cache holds a file at layout path rel.
func (c *cache) has(rel string) bool {
	_, err := os.Stat(c.file(rel))
	return err == nil
}

// writeFileAtomic writes b to p through a temporary file and rename, so p is
// never seen half written. It does not fsync: cached manifests and hash
// layers are verified every time they are read (against the content ID and
// the signed roots), so one torn by a crash is simply fetched again, and a
// join (one per live segment) should not wait on the disk.
func writeFileAtomic(p string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		return fmt.Errorf("cache: write %s: %w", p, err)
	}
	return nil
}
