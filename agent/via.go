package agent

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/store"
)

// One cache per machine. A peer daemon owns its cache directory (the
// store's lock): a `shoal get` on the same cache would fail to open it, and
// two caches on one machine would fetch the same bytes twice. So a running
// daemon leaves its gateway address in the cache directory, and a get that
// finds the cache in use goes through that gateway instead, as a download
// tool goes through its machine's daemon. The get trusts nothing the daemon
// says: it checks the manifest against its own --trust and every file
// against the file's Merkle root in that manifest.

// daemonFile is the file in a cache directory that names the gateway of the
// daemon running on it.
const daemonFile = "peer.json"

// daemonInfo is the content of daemonFile.
type daemonInfo struct {
	Gateway string `json:"gateway"` // base URL, e.g. http://127.0.0.1:7171
	PID     int    `json:"pid"`
}

// gatewayURL is the base URL a local client uses for a gateway listening on
// addr: a wildcard address is reached on loopback.
func gatewayURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// announceDaemon writes daemonFile into the cache directory and returns a
// function that removes it (if it is still this process's).
func announceDaemon(dir, gateway string) (func(), error) {
	b, err := json.Marshal(daemonInfo{Gateway: gateway, PID: os.Getpid()})
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, daemonFile)
	if err := writeFileAtomic(p, b); err != nil {
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	return func() {
		if cur, err := os.ReadFile(p); err == nil && string(cur) == string(b) {
			os.Remove(p)
		}
	}, nil
}

// runningDaemon returns the gateway of the peer daemon running on the cache
// directory dir, if there is one: the cache's store is locked and the
// daemon has left its address. A file left by a daemon that died is ignored
// (nothing holds the lock).
func runningDaemon(dir string) (string, bool) {
	if dir == "" {
		dir = DefaultCacheDir()
	}
	// The file first: checking the lock takes it for an instant, which
	// only a cache with a daemon file should see.
	b, err := os.ReadFile(filepath.Join(dir, daemonFile))
	if err != nil || !store.InUse(filepath.Join(dir, layout.ChunkDir)) {
		return "", false
	}
	var info daemonInfo
	if json.Unmarshal(b, &info) != nil || info.Gateway == "" {
		return "", false
	}
	if u, err := url.Parse(info.Gateway); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	return strings.TrimSuffix(info.Gateway, "/"), true
}

// daemonStartWait is how long a get that found its cache locked waits for
// a daemon starting on it to leave its address (a variable for tests).
var daemonStartWait = 2 * time.Second

// daemonStarting is for a get whose cache could not be opened (err): if
// another process holds it, it waits briefly for a daemon starting on it
// (it locks the cache before it writes daemonFile) and returns its gateway.
func daemonStarting(ctx context.Context, dir string, err error) (string, bool) {
	if !errors.Is(err, store.ErrLocked) {
		return "", false
	}
	end := time.Now().Add(daemonStartWait)
	for {
		if gw, ok := runningDaemon(dir); ok {
			return gw, true
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return "", false
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lockedCache explains a cache held by another process that is not a
// daemon a get can go through.
func lockedCache(err error) error {
	if !errors.Is(err, store.ErrLocked) {
		return err
	}
	return fmt.Errorf("%w: another shoal get is using this cache (no peer daemon runs on it); wait for it to finish, or give this get its own --cache", err)
}

// serveManifest answers GET /api/manifest/{id} with the signed manifest as
// published (from the cache, the origin or peers), for local clients such
// as a get going through this daemon. The client verifies it.
func (p *Peer) serveManifest(w http.ResponseWriter, r *http.Request) {
	id, err := core.ParseContentID(r.PathValue("id"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !p.authContent(w, r, id) { // with --gateway-tokens, as for the content itself
		return
	}
	if _, err := p.manifestOf(r.Context(), id); err != nil {
		code := http.StatusBadGateway
		switch {
		case errors.Is(err, manifest.ErrUntrusted) || errors.Is(err, manifest.ErrBadSignature):
			code = http.StatusForbidden
		case errors.Is(err, cdn.ErrNotFound):
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	b, err := os.ReadFile(p.cache.file(layout.ManifestPath(id)))
	if err != nil {
		http.Error(w, fmt.Sprintf("manifest %s: %v", id, err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(b)
}

// viaDaemon fetches t through the gateway of the daemon at gw: the manifest
// (checked against cfg.Trust), then each file, streamed into the output and
// checked against its Merkle root before the output is committed.
func viaDaemon(ctx context.Context, cfg GetConfig, t Target, gw string) (GetResult, error) {
	client := cfg.HTTP
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DisableCompression: true}}
	}
	fail := func(err error) (GetResult, error) {
		return GetResult{}, fmt.Errorf("through the peer daemon at %s: %w", gw, err)
	}
	if tok := cfg.Swarm.Token; tok != nil { // a daemon with --gateway-tokens asks for it
		client = withBearer(client, tok.Token)
	}
	body, err := daemonGet(ctx, client, gw+"/api/manifest/"+t.ID.String())
	if err != nil {
		return fail(err)
	}
	b, err := io.ReadAll(io.LimitReader(body, maxManifestBytes+1))
	body.Close()
	if err != nil {
		return fail(fmt.Errorf("manifest %s: %w", t.ID, err))
	}
	m, err := manifest.DecodeTrusted(b, t.ID, cfg.Trust)
	if err != nil {
		return fail(fmt.Errorf("manifest %s: %w", t.ID, err))
	}
	files, single, err := selectFiles(m, t.Path)
	if err != nil {
		return GetResult{}, err
	}
	files, err = withRoots(m, files, func(roots *manifest.RootTable, page int) error {
		body, err := daemonGet(ctx, client, fmt.Sprintf("%s/api/roots/%s/%d", gw, t.ID, page))
		if err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(body, manifest.RootPageSize+1))
		body.Close()
		if err != nil {
			return fmt.Errorf("root page %d of %s: %w", page, t.ID, err)
		}
		if err := roots.AddPage(page, b); err != nil {
			return fmt.Errorf("%w: root page %d of %s: %v", ErrVerify, page, t.ID, err)
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	res := GetResult{ID: t.ID, Files: len(files), Via: gw}
	for _, f := range files {
		res.Bytes += f.Size
	}
	res.Out = outName(cfg.Out, m, t, files, single)
	w, err := newOutput(res.Out, single)
	if err != nil {
		return GetResult{}, err
	}
	defer w.abort() // no-op after commit
	prog := newProgress(cfg.Progress, res.Bytes)
	defer prog.stop()
	// The whole content: the daemon fetches it all at once (and tells its
	// peers so); a file or directory: what is read, plus its window.
	query := ""
	if t.Path == "" {
		query = "?prefetch=all"
	}
	f := &fetcher{out: w, prog: prog, chunkSize: m.ChunkSize, base: t.Path}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	jobs := make(chan manifest.File)
	for range min(max(cfg.Parallel, 1), 4, len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for file := range jobs {
				u := gw + "/c/" + t.ID.String() + "/" + escapePath(file.Path) + query
				if err := f.fromGateway(ctx, client, u, file, f.rel(file, single)); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for _, file := range files {
		if err := w.create(f.rel(file, single), file.Size); err != nil {
			errOnce.Do(func() { firstErr = err; cancel() })
			break
		}
		select {
		case jobs <- file:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return fail(firstErr)
	}
	if err := w.commit(); err != nil {
		return GetResult{}, err
	}
	prog.finish()
	res.FromSource = res.Bytes
	cfg.Logger.Info("fetched through the peer daemon", "gateway", gw, "id", t.ID, "out", res.Out, "bytes", res.Bytes)
	return res, nil
}

// fromGateway streams one file from the daemon's gateway into the output,
// hashing it chunk by chunk; the file is accepted only if the chunk hashes
// reproduce the signed Merkle root.
func (f *fetcher) fromGateway(ctx context.Context, client *http.Client, u string, file manifest.File, rel string) error {
	body, err := daemonGet(ctx, client, u)
	if err != nil {
		return fmt.Errorf("%s: %w", file.Path, err)
	}
	defer body.Close()
	var (
		rb  manifest.RootBuilder
		buf = make([]byte, min(f.chunkSize, 256<<10))
		off int64
	)
	for idx := int64(0); off < file.Size; idx++ {
		n := core.ChunkLen(file.Size, f.chunkSize, idx)
		h := sha256.New()
		for left := n; left > 0; {
			k, err := io.ReadFull(body, buf[:min(left, int64(len(buf)))])
			if err != nil {
				return fmt.Errorf("%s: body ended at byte %d of %d: %w", file.Path, off, file.Size, err)
			}
			h.Write(buf[:k])
			if err := f.out.writeAt(rel, buf[:k], off); err != nil {
				return err
			}
			off += int64(k)
			left -= int64(k)
			f.prog.add(int64(k))
		}
		rb.Add(core.Hash(h.Sum(nil)))
	}
	if n, _ := io.CopyN(io.Discard, body, 1); n > 0 {
		return fmt.Errorf("%w: %s: the daemon sent more than its %d bytes", ErrVerify, file.Path, file.Size)
	}
	if got := rb.Root(); got != file.Root {
		return fmt.Errorf("%w: %s from the peer daemon: merkle root %s, want %s", ErrVerify, file.Path, got.Short(), file.Root.Short())
	}
	return nil
}

// withBearer returns a client that sends "Authorization: Bearer TOKEN" with
// every request, the token read at each request.
func withBearer(c *http.Client, token func() string) *http.Client {
	cc := *c
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	cc.Transport = bearerTransport{next: next, token: token}
	return &cc
}

type bearerTransport struct {
	next  http.RoundTripper
	token func() string
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if tok := b.token(); tok != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return b.next.RoundTrip(r)
}

// daemonGet GETs u from the daemon and returns the body of a 200.
func daemonGet(ctx context.Context, client *http.Client, u string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp.Body, nil
}

// escapePath escapes each element of a content path for a URL.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
