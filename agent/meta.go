package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/wire"
)

// metaPeers bounds the peers asked at once for a manifest or hash layer
// the origin could not give.
const metaPeers = 4

// maxManifestBytes bounds a manifest taken from a peer (it is verified
// against the content ID, but must not exhaust memory first).
const maxManifestBytes = 64 << 20

// serveMeta answers peers' requests for manifests, hash layers and root
// pages from the cache. All are self-verifying, so serving them lets a newcomer join and
// complete from peers while the origin is down. A peer that may not upload
// (the operator's policy or its own --p2p: off or leech-only for the
// content, or peer-wide for a hash layer or root page, whose content it
// cannot name)
// serves none.
func (p *Peer) serveMeta(kind wire.MetaKind, key core.Hash) ([]byte, bool) {
	var rel string
	switch kind {
	case wire.MetaManifest:
		id := core.ContentID(key)
		if !p.pol.modeFor(id).UploadToPeers() {
			return nil, false
		}
		rel = layout.ManifestPath(id)
	case wire.MetaHashLayer, wire.MetaRootPage:
		if !modeOf(p.pol.peerWideDecision().P2P).UploadToPeers() {
			return nil, false
		}
		rel = layout.HashLayerPath(key)
		if kind == wire.MetaRootPage {
			rel = layout.RootPagePath(key)
		}
	default:
		return nil, false
	}
	b, err := os.ReadFile(p.cache.file(rel))
	return b, err == nil
}

// manifestOf returns the verified manifest of id: from the cache, the
// origin, or (origin unreachable) peers the tracker lists.
func (p *Peer) manifestOf(ctx context.Context, id core.ContentID) (*manifest.Manifest, error) {
	m, err := p.cache.manifest(ctx, p.origin, id, p.cfg.Trust)
	if err == nil || !originDown(err) || p.tracker == nil || !p.pol.modeFor(id).FetchFromPeers() {
		return m, err
	}
	peers, lerr := p.lookupPeers(ctx, id)
	b, m, perr := fromPeers(ctx, p, peers, wire.MetaManifest, core.Hash(id), maxManifestBytes, func(b []byte) (*manifest.Manifest, error) {
		return manifest.DecodeTrusted(b, id, p.cfg.Trust)
	})
	if perr != nil {
		return nil, fmt.Errorf("%w; from peers: %v%s", err, perr, trackerSaid(lerr))
	}
	if err := writeFileAtomic(p.cache.file(layout.ManifestPath(id)), b); err != nil {
		return nil, err
	}
	return m, nil
}

// originDown says whether an origin error is worth trying peers for: the
// origin failed or is unreachable, as opposed to serving bad bytes or a
// trust failure (which peers cannot fix), or a live origin saying it has no
// such thing (an unknown ID must not become a tracker announce).
func originDown(err error) bool {
	return !errors.Is(err, cdn.ErrNotFound) && !errors.Is(err, manifest.ErrUntrusted) && !errors.Is(err, manifest.ErrBadSignature) && !errors.Is(err, ErrVerify) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// lookupPeers asks the tracker once for peers of id (before a session
// exists, to fetch its manifest from them). The error is the tracker's
// refusal or failure, for the caller's message.
func (p *Peer) lookupPeers(ctx context.Context, id core.ContentID) ([]discovery.PeerInfo, error) {
	req := discovery.AnnounceRequest{
		Content: id, Peer: string(p.host.ID()), Addrs: p.host.Addrs(), Region: p.cfg.Region, Left: 1, NumWant: 30,
		Token: p.currentToken(),
	}
	var err error
	if s := signerOf(p.host); s != nil {
		err = req.Sign(s, time.Now())
	}
	var resp discovery.AnnounceResponse
	if err == nil {
		resp, err = p.tracker.Announce(ctx, req)
	}
	if err != nil {
		p.log.Debug("tracker lookup", "content", id, "err", err)
		return nil, err
	}
	return resp.Peers, nil
}

// trackerSaid adds a tracker lookup's error to a message ("" without one).
func trackerSaid(err error) string {
	if err == nil {
		return ""
	}
	return " (tracker: " + err.Error() + ")"
}

// fromPeers asks peers, a few at a time, for a metadata object until one
// answers with bytes that parse (parse verifies them): it returns those
// bytes and what they parsed to.
func fromPeers[T any](ctx context.Context, p *Peer, peers []discovery.PeerInfo, kind wire.MetaKind, key core.Hash, maxSize int, parse func([]byte) (T, error)) ([]byte, T, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		b   []byte
		v   T
		err error
	}
	answers := make(chan answer, len(peers))
	slots := make(chan struct{}, metaPeers)
	var wg sync.WaitGroup
	defer wg.Wait()
	tried := 0
	for _, pi := range peers {
		if netx.PeerID(pi.Peer) == p.host.ID() {
			continue
		}
		tried++
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				answers <- answer{err: ctx.Err()}
				return
			}
			defer func() { <-slots }()
			var a answer
			a.b, a.err = p.node.FetchMeta(ctx, netx.PeerID(pi.Peer), pi.Addrs, kind, key, maxSize)
			if a.err == nil {
				if a.v, a.err = parse(a.b); a.err != nil {
					a.err = fmt.Errorf("%w: %s from peer %s: %v", ErrVerify, kind, netx.PeerID(pi.Peer).Short(), a.err)
				}
			}
			answers <- a
		}()
	}
	var zero T
	if tried == 0 {
		return nil, zero, errors.New("no peers to ask")
	}
	var last error
	for range tried {
		a := <-answers
		if a.err == nil {
			return a.b, a.v, nil
		}
		last = a.err
	}
	return nil, zero, last
}

// layer loads file fi's hash layer into sess: from the cache, the origin,
// or connected peers. Concurrent callers for the same file share one fetch.
func (p *Peer) layer(ctx context.Context, j *joined, fi int) error {
	if j.sess.Content().HasLayer(fi) {
		return nil
	}
	return p.shareFetch(ctx, j, j.loading, fi, func() error { return p.fetchLayer(j.ctx, j, fi) })
}

// shareFetch runs fetch once for every concurrent caller asking for key of
// calls (one of j's maps, guarded by j.lmu), on a goroutine the peer owns,
// and waits for its outcome or ctx.
func (p *Peer) shareFetch(ctx context.Context, j *joined, calls map[int]*layerCall, key int, fetch func() error) error {
	j.lmu.Lock()
	call := calls[key]
	if call == nil {
		call = &layerCall{done: make(chan struct{})}
		calls[key] = call
		started := p.goOwned(func() {
			call.err = fetch()
			j.lmu.Lock()
			delete(calls, key)
			j.lmu.Unlock()
			close(call.done)
		})
		if !started { // the peer is closing
			delete(calls, key)
			call.err = fmt.Errorf("content %s: %w", j.sess.Content().ID, swarm.ErrClosed)
			close(call.done)
		}
	}
	j.lmu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type layerCall struct {
	done chan struct{}
	err  error
}

// metaPeers lists the peers to ask for sess's metadata: those connected,
// else (not connected yet) those the tracker lists, with the tracker's
// error if it failed.
func (p *Peer) metaPeers(ctx context.Context, sess *swarm.Session) ([]discovery.PeerInfo, error) {
	var peers []discovery.PeerInfo
	for _, id := range sess.Peers() {
		peers = append(peers, discovery.PeerInfo{Peer: string(id)})
	}
	if len(peers) > 0 || p.tracker == nil {
		return peers, nil
	}
	return p.lookupPeers(ctx, sess.Content().ID)
}

// fetchLayer loads file fi's hash layer, its root first when that is in a
// root page not loaded yet.
func (p *Peer) fetchLayer(ctx context.Context, j *joined, fi int) error {
	sess := j.sess
	f, err := p.fileOf(ctx, j, fi)
	if err != nil {
		return err
	}
	l, err := p.cache.hashLayer(ctx, p.origin, f)
	if err != nil && originDown(err) && sess.Mode().FetchFromPeers() {
		peers, lerr := p.metaPeers(ctx, sess)
		var b []byte
		var perr error
		b, l, perr = fromPeers(ctx, p, peers, wire.MetaHashLayer, f.Root, int(f.Chunks)*core.HashSize, func(b []byte) (manifest.HashLayer, error) {
			return manifest.ParseHashLayer(f, b)
		})
		if perr != nil {
			return fmt.Errorf("%w; from peers: %v%s", err, perr, trackerSaid(lerr))
		}
		err = writeFileAtomic(p.cache.file(layout.HashLayerPath(f.Root)), b)
	}
	if err != nil {
		return err
	}
	return sess.SetLayer(fi, l)
}

// layers loads the hash layers of files, a few at a time.
func (p *Peer) layers(ctx context.Context, j *joined, files []int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(files))
	slots := make(chan struct{}, 8)
	for _, fi := range files {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		go func() {
			defer func() { <-slots }()
			errs <- p.layer(ctx, j, fi)
		}()
	}
	for range files {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// loadCachedLayers loads, in the background after a join, the hash layers
// already in the cache, so a restarted peer advertises and serves the
// chunks it still holds. Files whose layer is not cached are left for
// readers to load on demand.
func (p *Peer) loadCachedLayers(j *joined) {
	c := j.sess.Content()
	missing := map[int]bool{} // root pages not in the cache
	for fi := range c.Manifest.Files {
		if j.ctx.Err() != nil {
			return
		}
		if c.HasLayer(fi) {
			continue
		}
		f, ok := c.Roots.File(fi)
		if !ok { // in a root page: the cache's copy, if any
			page, _ := c.Roots.Page(fi)
			if missing[page] || !p.cache.cachedRootPage(c.Manifest, c.Roots, page) {
				missing[page] = true
				continue
			}
			f, _ = c.Roots.File(fi)
		}
		if l, ok := p.cache.cachedLayer(f); ok {
			j.sess.SetLayer(fi, l)
		}
	}
}
