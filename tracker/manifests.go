package tracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
)

// Defaults of ManifestLookupConfig.
const (
	DefaultManifestCacheSize   = 10_000
	DefaultManifestMaxBytes    = 8 << 20
	DefaultManifestNegativeTTL = 30 * time.Second
	DefaultManifestTimeout     = 10 * time.Second
)

// ErrManifestLookup wraps every failure to learn a content's manifest.
var ErrManifestLookup = errors.New("manifest lookup failed")

// ManifestInfo is what access checks need of a content's manifest: its
// name (for name-prefix scopes), publisher and policy. Small, so thousands
// fit in the cache where whole manifests would not.
type ManifestInfo struct {
	Content   core.ContentID
	Name      string
	Publisher manifest.PublicKey
	Policy    manifest.Policy // zero when the manifest has none
}

// ManifestLookupConfig configures a ManifestLookup.
type ManifestLookupConfig struct {
	// Origin is the base URL of the origin layout (required).
	Origin string
	// Client fetches manifests; nil uses one with a 10 s timeout.
	Client *http.Client
	// MaxBytes bounds one manifest the tracker reads (8 MiB); larger ones
	// fail the lookup.
	MaxBytes int64
	// Size bounds the cache, in contents (10,000; least recently used
	// forgotten).
	Size int
	// NegativeTTL is how long a failed lookup is remembered, so announces
	// for an unknown content do not each cost an origin request (30 s).
	NegativeTTL time.Duration
	// Clock ages failures (core.RealClock).
	Clock core.Clock
}

// ManifestLookup fetches a content's manifest from the origin once, checks
// that its bytes hash to the content ID and that it is signed by the key it
// names, and caches what access checks need. Concurrent lookups of one
// content share a single fetch. Safe for concurrent use.
type ManifestLookup struct {
	cfg  ManifestLookupConfig
	base *url.URL
	sf   singleflight.Group

	mu   sync.Mutex // guards ok and fail together, so a content is never in both
	ok   *lru.Cache[core.ContentID, ManifestInfo]
	fail *lru.Cache[core.ContentID, failure]
}

type failure struct {
	err   error
	until time.Time
}

// NewManifestLookup checks cfg and returns a lookup.
func NewManifestLookup(cfg ManifestLookupConfig) (*ManifestLookup, error) {
	u, err := url.Parse(cfg.Origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("origin URL %q: want http(s)://host[:port][/path]", cfg.Origin)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultManifestTimeout}
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultManifestMaxBytes
	}
	if cfg.Size <= 0 {
		cfg.Size = DefaultManifestCacheSize
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = DefaultManifestNegativeTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = core.RealClock{}
	}
	ok, _ := lru.New[core.ContentID, ManifestInfo](cfg.Size)
	fail, _ := lru.New[core.ContentID, failure](cfg.Size)
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &ManifestLookup{cfg: cfg, base: u, ok: ok, fail: fail}, nil
}

// Lookup returns the facts of id's manifest, from the cache or the origin.
func (l *ManifestLookup) Lookup(ctx context.Context, id core.ContentID) (ManifestInfo, error) {
	l.mu.Lock()
	if info, ok := l.ok.Get(id); ok {
		l.mu.Unlock()
		return info, nil
	}
	if f, ok := l.fail.Get(id); ok {
		if l.cfg.Clock.Now().Before(f.until) {
			l.mu.Unlock()
			return ManifestInfo{}, f.err
		}
		l.fail.Remove(id)
	}
	l.mu.Unlock()

	// The fetch outlives any one caller: others may be waiting for it.
	ch := l.sf.DoChan(id.String(), func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultManifestTimeout)
		defer cancel()
		info, err := l.fetch(fctx, id)
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			l.fail.Add(id, failure{err: err, until: l.cfg.Clock.Now().Add(l.cfg.NegativeTTL)})
		} else {
			l.ok.Add(id, info)
		}
		return info, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return ManifestInfo{}, r.Err
		}
		return r.Val.(ManifestInfo), nil
	case <-ctx.Done():
		return ManifestInfo{}, fmt.Errorf("%w: content %s: %w", ErrManifestLookup, id.Short(), ctx.Err())
	}
}

func (l *ManifestLookup) fetch(ctx context.Context, id core.ContentID) (ManifestInfo, error) {
	u := *l.base
	u.Path += "/" + layout.ManifestPath(id)
	fail := func(format string, a ...any) (ManifestInfo, error) {
		return ManifestInfo{}, fmt.Errorf("%w: content %s from %s: %s", ErrManifestLookup, id, u.String(), fmt.Sprintf(format, a...))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail("%v", err)
	}
	resp, err := l.cfg.Client.Do(req)
	if err != nil {
		return fail("%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail("HTTP %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, l.cfg.MaxBytes+1))
	if err != nil {
		return fail("read: %v", err)
	}
	if int64(len(b)) > l.cfg.MaxBytes {
		return fail("larger than %d bytes", l.cfg.MaxBytes)
	}
	if got := core.ContentID(core.SumSHA256(b)); got != id {
		return fail("bytes hash to %s, not to the content ID", got)
	}
	m, err := manifest.Decode(b) // checks the signature against the key it names
	if err != nil {
		return fail("%v", err)
	}
	info := ManifestInfo{Content: id, Name: m.Name, Publisher: m.Publisher}
	if m.Policy != nil {
		info.Policy = *m.Policy
	}
	return info, nil
}
