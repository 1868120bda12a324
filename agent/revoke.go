package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/manifest"
)

// DefaultRevocationPoll is how often a peer fetches each trusted key's
// revocation list from the origin (PeerConfig.RevocationPoll).
const DefaultRevocationPoll = 60 * time.Second

// RevocationTopic is the GossipSub topic revocation lists spread on.
const RevocationTopic = "/shoal/revocations/1"

// revocations is what the peer knows of its publishers' revocation lists:
// the newest valid list of each signer, and the union of what they name.
// Revoked keys are marked in the trust set itself (PeerConfig.Trust), so a
// manifest they signed no longer verifies anywhere.
type revocations struct {
	p *Peer

	mu       sync.Mutex
	lists    map[manifest.PublicKey]*manifest.Revocation // guarded by mu: newest per signer
	raw      map[manifest.PublicKey][]byte               // guarded by mu: its bytes, as signed
	etags    map[manifest.PublicKey]string               // guarded by mu: the origin's ETag of each
	contents map[core.ContentID]manifest.PublicKey       // guarded by mu: revoked contents, by who
	channels map[manifest.ChannelID]manifest.PublicKey   // guarded by mu: revoked channels, by who
	publish  func([]byte)                                // guarded by mu: gossip; nil without libp2p

	enforce sync.Mutex // serialises enforcement (leave, purge)
}

func newRevocations(p *Peer) *revocations {
	return &revocations{p: p, lists: map[manifest.PublicKey]*manifest.Revocation{}, raw: map[manifest.PublicKey][]byte{},
		etags: map[manifest.PublicKey]string{}, contents: map[core.ContentID]manifest.PublicKey{}, channels: map[manifest.ChannelID]manifest.PublicKey{}}
}

// contentRevoked returns an error wrapping manifest.ErrRevoked if a list
// names id.
func (rv *revocations) contentRevoked(id core.ContentID) error {
	rv.mu.Lock()
	by, ok := rv.contents[id]
	rv.mu.Unlock()
	if ok {
		return fmt.Errorf("%w: content %s was revoked by publisher %s", manifest.ErrRevoked, id, by)
	}
	return nil
}

// channelRevoked returns an error wrapping manifest.ErrRevoked if a list
// names channel id.
func (rv *revocations) channelRevoked(id manifest.ChannelID) error {
	rv.mu.Lock()
	by, ok := rv.channels[id]
	rv.mu.Unlock()
	if ok {
		return fmt.Errorf("%w: live channel %s was revoked by publisher %s", manifest.ErrRevoked, id, by)
	}
	return nil
}

// check is the gossip validator: a list that decodes under the trust set
// and is newer than the one held from its signer (or is that one) passes.
func (rv *revocations) check(b []byte) live.Verdict {
	r, err := manifest.DecodeRevocation(b, rv.p.cfg.Trust)
	if err != nil {
		if errors.Is(err, manifest.ErrUntrusted) {
			return live.Ignore // perhaps a key we do not (or no longer) trust
		}
		return live.Reject
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if held := rv.lists[r.Publisher]; r.Newer(held) || string(rv.raw[r.Publisher]) == string(b) {
		return live.Accept
	}
	return live.Ignore
}

// offer takes a revocation list from source (origin, gossip, cache): if it
// is valid and newer than the one held from its signer, it replaces it, is
// saved in the cache, passed on by gossip, and enforced. It reports
// whether the list was taken.
func (rv *revocations) offer(ctx context.Context, b []byte, source string) (bool, error) {
	r, err := manifest.DecodeRevocation(b, rv.p.cfg.Trust)
	if err != nil {
		return false, fmt.Errorf("revocation list from %s: %w", source, err)
	}
	rv.mu.Lock()
	if !r.Newer(rv.lists[r.Publisher]) {
		rv.mu.Unlock()
		return false, nil
	}
	rv.lists[r.Publisher], rv.raw[r.Publisher] = r, b
	var newKeys []manifest.PublicKey
	var newContents []core.ContentID
	var newChannels []manifest.ChannelID
	for _, id := range r.Contents {
		if _, ok := rv.contents[id]; !ok {
			rv.contents[id] = r.Publisher
			newContents = append(newContents, id)
		}
	}
	for _, ch := range r.Channels {
		if _, ok := rv.channels[ch]; !ok {
			rv.channels[ch] = r.Publisher
			newChannels = append(newChannels, ch)
		}
	}
	publish := rv.publish
	rv.mu.Unlock()
	for _, k := range r.Keys {
		if rv.p.cfg.Trust.Revoke(k) {
			newKeys = append(newKeys, k)
		}
	}
	if source != "cache" {
		if err := writeFileAtomic(rv.p.cache.file(layout.RevocationPath(r.Publisher.String())), b); err != nil {
			rv.p.log.Warn("revocation list not saved", "err", err)
		}
	}
	if publish != nil && source != "gossip" {
		publish(b)
	}
	rv.p.log.Info("revocation list", "publisher", r.Publisher, "seq", r.Seq, "from", source,
		"keys", len(r.Keys), "contents", len(r.Contents), "channels", len(r.Channels))
	now := time.Now()
	for _, k := range newKeys {
		rv.p.audit.Record(audit.Event{Time: now, Kind: audit.KindRevoked, By: r.Publisher.String(), Reason: fmt.Sprintf("key %s revoked (list %d, from %s)", k, r.Seq, source)})
	}
	for _, id := range newContents {
		rv.p.audit.Record(audit.Event{Time: now, Kind: audit.KindRevoked, Content: id.String(), By: r.Publisher.String(), Reason: fmt.Sprintf("content revoked (list %d, from %s)", r.Seq, source)})
	}
	for _, ch := range newChannels {
		rv.p.audit.Record(audit.Event{Time: now, Kind: audit.KindRevoked, Content: ch.String(), By: r.Publisher.String(), Reason: fmt.Sprintf("channel revoked (list %d, from %s)", r.Seq, source)})
	}
	if len(newKeys)+len(newContents)+len(newChannels) > 0 {
		rv.p.enforceTrust(ctx)
	}
	return true, nil
}

// loadCached takes the lists saved in the cache by an earlier run.
func (rv *revocations) loadCached(ctx context.Context) {
	dir := rv.p.cache.file(layout.RevocationDir)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || len(b) > manifest.MaxRevocationSize {
			continue
		}
		if _, err := rv.offer(ctx, b, "cache"); err != nil {
			rv.p.log.Debug("cached revocation list ignored", "file", e.Name(), "err", err)
		}
	}
}

// poll fetches the revocation list of every trusted key from the origin
// once (conditionally: an unchanged list costs a 304).
func (rv *revocations) poll(ctx context.Context) {
	for _, k := range rv.p.cfg.Trust.Keys() {
		rv.mu.Lock()
		etag := rv.etags[k]
		rv.mu.Unlock()
		b, etag, modified, err := rv.p.origin.GetIfNoneMatch(ctx, layout.RevocationPath(k.String()), etag, manifest.MaxRevocationSize)
		switch {
		case errors.Is(err, cdn.ErrNotFound):
			continue // this key has revoked nothing
		case err != nil:
			if ctx.Err() == nil {
				rv.p.log.Debug("revocation list poll", "publisher", k, "err", err)
			}
			continue
		case !modified:
			continue
		}
		if _, err := rv.offer(ctx, b, "origin"); err != nil {
			rv.p.log.Warn("revocation list refused", "publisher", k, "err", err)
			continue // do not remember the ETag: fetch it again next time
		}
		rv.mu.Lock()
		rv.etags[k] = etag
		rv.mu.Unlock()
	}
}

// run polls the origin every interval (±10 %) until ctx ends, and takes
// lists from gossip when the host is libp2p.
func (rv *revocations) run(ctx context.Context, interval time.Duration) {
	if g := rv.p.gossip(); g != nil {
		publish, err := g.Subscribe(ctx, RevocationTopic, rv.check, func(b []byte) {
			if _, err := rv.offer(ctx, b, "gossip"); err != nil {
				rv.p.log.Debug("revocation list by gossip", "err", err)
			}
		})
		if err != nil {
			rv.p.log.Warn("revocation lists by origin polling only", "err", err)
		} else {
			rv.mu.Lock()
			rv.publish = publish
			rv.mu.Unlock()
		}
	}
	for {
		d := time.Duration(float64(interval) * (0.9 + 0.2*rand.Float64()))
		if core.Sleep(ctx, d) != nil {
			return
		}
		rv.poll(ctx)
	}
}

// enforceTrust leaves the swarm of, and purges from the cache, every
// content that is revoked or whose publisher key is revoked; contents
// whose key is merely no longer trusted (removed from the trust set) are
// left but kept.
func (p *Peer) enforceTrust(ctx context.Context) {
	p.revs.enforce.Lock()
	defer p.revs.enforce.Unlock()
	for _, s := range p.Sessions() {
		c := s.Content()
		revoked := p.revs.contentRevoked(c.ID) != nil || p.cfg.Trust.Revoked(c.Manifest.Publisher)
		if revoked || !p.cfg.Trust.Trusts(c.Manifest.Publisher) {
			p.log.Info("leaving swarm: publisher no longer trusted or content revoked", "content", c.ID, "revoked", revoked)
			p.leaveWait(ctx, c.ID)
		}
	}
	// Then everything the cache holds, joined or not.
	ents, _ := os.ReadDir(p.cache.file(layout.ManifestDir))
	for _, e := range ents {
		id, err := core.ParseContentID(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(p.cache.file(layout.ManifestPath(id)))
		if err != nil {
			continue
		}
		m, err := manifest.Decode(b)
		if err != nil {
			continue
		}
		if p.revs.contentRevoked(id) == nil && !p.cfg.Trust.Revoked(m.Publisher) {
			continue
		}
		n := p.purge(id, m)
		p.log.Info("purged revoked content", "content", id, "chunks", n)
		p.audit.Record(audit.Event{Time: time.Now(), Kind: audit.KindRevoked, Content: id.String(), By: m.Publisher.String(),
			Reason: fmt.Sprintf("left its swarm and purged %d chunks", n)})
	}
}

// leaveWait leaves the swarm of id and waits (until ctx ends) for its
// session to stop, so nothing it fetches lands after a purge.
func (p *Peer) leaveWait(ctx context.Context, id core.ContentID) {
	j := p.joinedOf(id)
	p.Leave(id)
	if j == nil {
		return
	}
	select {
	case <-j.ready:
	case <-ctx.Done():
		return
	}
	if j.stopped != nil {
		select {
		case <-j.stopped:
		case <-ctx.Done():
		}
	}
}

// purge removes a content's chunks, hash layers, root pages and manifest
// from the cache and reports how many chunks went. A chunk is stored once for every
// content that holds it, so one shared with another content goes too (it
// is fetched again if that one is read).
func (p *Peer) purge(id core.ContentID, m *manifest.Manifest) int {
	n := 0
	roots := manifest.NewRootTable(m) // a paged manifest's roots: from the pages cached
	for fi := range m.Files {
		if page, ok := roots.Page(fi); ok && !p.cache.cachedRootPage(m, roots, page) {
			continue
		}
		f, _ := roots.File(fi)
		l, ok := p.cache.cachedLayer(f)
		if !ok {
			continue
		}
		for _, h := range l {
			if p.cache.chunks.Has(h) {
				if err := p.cache.chunks.Delete(h); err == nil {
					n++
				}
			}
		}
		os.Remove(p.cache.file(layout.HashLayerPath(f.Root)))
	}
	for _, h := range m.RootPages {
		os.Remove(p.cache.file(layout.RootPagePath(h)))
	}
	os.Remove(p.cache.file(layout.ManifestPath(id)))
	return n
}

// RevocationsNow polls the origin for revocation lists at once (tests, and
// `shoal get` before it fetches).
func (p *Peer) RevocationsNow(ctx context.Context) { p.revs.poll(ctx) }

// revokedAtOrigin fetches the revocation list of every key trust trusts
// from the origin once (a one-shot get runs no poll loop), marks the keys
// they revoke in trust, and returns an error wrapping manifest.ErrRevoked
// if one names content id. A list that is missing or fails to verify is
// skipped: the manifest's own check still applies.
func revokedAtOrigin(ctx context.Context, origin *cdn.Client, trust *manifest.KeySet, id core.ContentID) error {
	var named error
	for _, k := range trust.Keys() {
		b, _, _, err := origin.GetIfNoneMatch(ctx, layout.RevocationPath(k.String()), "", manifest.MaxRevocationSize)
		if err != nil {
			continue
		}
		r, err := manifest.DecodeRevocation(b, trust)
		if err != nil {
			continue
		}
		for _, rk := range r.Keys {
			trust.Revoke(rk)
		}
		if r.RevokesContent(id) && named == nil {
			named = fmt.Errorf("%w: content %s was revoked by publisher %s", manifest.ErrRevoked, id, r.Publisher)
		}
	}
	return named
}
