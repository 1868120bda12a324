package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/wire"
)

// A paged manifest (manifest.VersionPaged) leaves out the roots of its
// multi-chunk files; a receiver learns one from its root page, fetched like
// a hash layer (from the cache, else the origin, else peers) before the
// file's hash layer, and only for files someone reads.

// rootPage adds root page page of m to roots from the cache or the origin,
// and keeps a copy the origin sent.
func (c *cache) rootPage(ctx context.Context, origin *cdn.Client, m *manifest.Manifest, roots *manifest.RootTable, page int) error {
	if c.cachedRootPage(m, roots, page) {
		return nil
	}
	h := m.RootPages[page]
	b, err := origin.RootPage(ctx, h, roots.PageSize(page))
	if err != nil && !errors.Is(err, cdn.ErrBadResponse) {
		return fmt.Errorf("root page %d of %s: %w", page, m.Name, err)
	}
	if err != nil {
		return fmt.Errorf("%w: root page %d of %s: %v", ErrVerify, page, m.Name, err)
	}
	if err := roots.AddPage(page, b); err != nil {
		return fmt.Errorf("%w: root page %d of %s from %s: %v", ErrVerify, page, m.Name, origin.BaseURL(), err)
	}
	return writeFileAtomic(c.file(layout.RootPagePath(h)), b)
}

// cachedRootPage adds root page page of m to roots if the cache holds a
// copy that verifies; a copy that does not is removed.
func (c *cache) cachedRootPage(m *manifest.Manifest, roots *manifest.RootTable, page int) bool {
	if roots.HasPage(page) {
		return true
	}
	p := c.file(layout.RootPagePath(m.RootPages[page]))
	b, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	if roots.AddPage(page, b) != nil {
		os.Remove(p)
		return false
	}
	return true
}

// withRoots returns files (some of m's, by path) with their roots, loading
// into a root table the root pages they need with load; for fetches without
// a session.
func withRoots(m *manifest.Manifest, files []manifest.File, load func(roots *manifest.RootTable, page int) error) ([]manifest.File, error) {
	if !m.Paged() {
		return files, nil
	}
	index := make(map[string]int, len(m.Files))
	for fi, f := range m.Files {
		index[f.Path] = fi
	}
	roots := manifest.NewRootTable(m)
	out := make([]manifest.File, len(files))
	for i, f := range files {
		fi := index[f.Path]
		if page, ok := roots.Page(fi); ok && !roots.HasPage(page) {
			if err := load(roots, page); err != nil {
				return nil, err
			}
		}
		out[i], _ = roots.File(fi)
	}
	return out, nil
}

// fileOf returns file fi of j's content with its root: inline, or from its
// root page, loaded first if need be.
func (p *Peer) fileOf(ctx context.Context, j *joined, fi int) (manifest.File, error) {
	roots := j.sess.Content().Roots
	if f, ok := roots.File(fi); ok {
		return f, nil
	}
	page, _ := roots.Page(fi)
	if err := p.rootPageOf(ctx, j, page); err != nil {
		return manifest.File{}, err
	}
	f, _ := roots.File(fi)
	return f, nil
}

// File returns file fi of a joined content with its root (see fileOf).
func (p *Peer) File(ctx context.Context, sess *swarm.Session, fi int) (manifest.File, error) {
	if f, ok := sess.Content().Roots.File(fi); ok {
		return f, nil
	}
	j := p.joinedOf(sess.Content().ID)
	if j == nil || j.sess != sess {
		return manifest.File{}, fmt.Errorf("content %s: %w", sess.Content().ID, swarm.ErrClosed)
	}
	return p.fileOf(ctx, j, fi)
}

// rootPageOf loads root page page of j's content: from the cache, the
// origin, or peers. Concurrent callers for the same page share one fetch.
func (p *Peer) rootPageOf(ctx context.Context, j *joined, page int) error {
	c := j.sess.Content()
	if c.Roots.HasPage(page) {
		return nil
	}
	return p.shareFetch(ctx, j, j.pages, page, func() error { return p.fetchRootPage(j.ctx, j.sess, page) })
}

func (p *Peer) fetchRootPage(ctx context.Context, sess *swarm.Session, page int) error {
	c := sess.Content()
	err := p.cache.rootPage(ctx, p.origin, c.Manifest, c.Roots, page)
	if err == nil || !originDown(err) || !sess.Mode().FetchFromPeers() {
		return err
	}
	peers, lerr := p.metaPeers(ctx, sess)
	h := c.Manifest.RootPages[page]
	b, _, perr := fromPeers(ctx, p, peers, wire.MetaRootPage, h, int(c.Roots.PageSize(page)), func(b []byte) (struct{}, error) {
		return struct{}{}, c.Roots.AddPage(page, b)
	})
	if perr != nil {
		return fmt.Errorf("%w; from peers: %v%s", err, perr, trackerSaid(lerr))
	}
	return writeFileAtomic(p.cache.file(layout.RootPagePath(h)), b)
}

// prefetchRootPages loads, off the request's path, the root pages of
// files fis of j's content that are not loaded yet: a player that has its
// playlist asks for these files next, and their pages then need not be
// fetched before their hash layers.
func (p *Peer) prefetchRootPages(j *joined, fis []int) {
	roots := j.sess.Content().Roots
	seen := map[int]bool{}
	for _, fi := range fis {
		page, ok := roots.Page(fi)
		if !ok || seen[page] || roots.HasPage(page) {
			continue
		}
		seen[page] = true
		p.goOwned(func() {
			if err := p.rootPageOf(j.ctx, j, page); err != nil && j.ctx.Err() == nil {
				p.log.Debug("root page prefetch", "content", j.sess.Content().ID, "page", page, "err", err)
			}
		})
	}
}

// serveRootPage answers GET /api/roots/{id}/{page} with root page page of
// content id's paged manifest (from the cache, the origin or peers), for
// local clients such as a get going through this daemon. The client
// verifies it against the manifest.
func (p *Peer) serveRootPage(w http.ResponseWriter, r *http.Request) {
	id, err := core.ParseContentID(r.PathValue("id"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !p.authContent(w, r, id) { // with --gateway-tokens, as for the content itself
		return
	}
	m, err := p.manifestOf(r.Context(), id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	page, err := strconv.Atoi(r.PathValue("page"))
	if err != nil || page < 0 || page >= len(m.RootPages) {
		http.Error(w, fmt.Sprintf("content %s has no root page %q", id, r.PathValue("page")), http.StatusNotFound)
		return
	}
	if j := p.joinedOf(id); j != nil && j.isReady() {
		err = p.rootPageOf(r.Context(), j, page)
	} else {
		err = p.cache.rootPage(r.Context(), p.origin, m, manifest.NewRootTable(m), page)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	b, err := os.ReadFile(p.cache.file(layout.RootPagePath(m.RootPages[page])))
	if err != nil {
		http.Error(w, fmt.Sprintf("root page %d of %s: %v", page, id, err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(b)
}
