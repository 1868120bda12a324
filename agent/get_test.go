package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shoal-cdn/shoal/cdn"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/origin"
	"github.com/shoal-cdn/shoal/publish"
)

const testChunk = core.MinChunkSize

// genTree writes files of the given sizes (path → size) with bytes drawn
// from (name, seed), so a failure reproduces.
func genTree(t testing.TB, dir, name string, seed uint64, files map[string]int) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, uint64(len(name))))
	for p, n := range files {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type fixture struct {
	src, layoutDir string
	key            ed25519.PrivateKey
	id             core.ContentID
	m              *manifest.Manifest
	url            string
	srv            *origin.Server
}

func publishTree(t testing.TB, name string, seed uint64, files map[string]int) *fixture {
	return publishTreeVersion(t, name, seed, files, 0)
}

// publishTreeVersion is publishTree with the manifest format version
// (publish.Config.ManifestVersion).
func publishTreeVersion(t testing.TB, name string, seed uint64, files map[string]int, version int) *fixture {
	t.Helper()
	fx := &fixture{src: filepath.Join(t.TempDir(), name), layoutDir: t.TempDir()}
	genTree(t, fx.src, name, seed, files)
	fx.key = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(seed)}, 32))
	res, err := publish.Publish(context.Background(), publish.Config{Key: fx.key, Out: fx.layoutDir, ChunkSize: testChunk, Paths: []string{fx.src}, ManifestVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	fx.id, fx.m = res.ID, res.Manifest
	fx.srv, err = origin.New(origin.Config{Dir: fx.layoutDir})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(fx.srv.Handler())
	t.Cleanup(hs.Close)
	fx.url = hs.URL
	return fx
}

func (fx *fixture) get(t *testing.T, target, out string) (GetResult, error) {
	t.Helper()
	return Get(context.Background(), GetConfig{
		Origin: fx.url, Trust: manifest.NewKeySet(manifest.PublicOf(fx.key)), Target: target, Out: out, CacheDir: t.TempDir(),
	})
}

func sameTree(t *testing.T, want, got string) {
	t.Helper()
	n := 0
	filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs after the round trip (%v)", rel, err)
		}
		n++
		return nil
	})
	m := 0
	filepath.WalkDir(got, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			m++
		}
		return err
	})
	if n != m {
		t.Errorf("%d files published, %d fetched", n, m)
	}
}

func TestPublishFetchRoundTrip(t *testing.T) {
	many := map[string]int{}
	for i := range 40 {
		many[fmt.Sprintf("d%d/f%02d", i%4, i)] = i * 997
	}
	for _, tc := range []struct {
		name  string
		files map[string]int
	}{
		{"empty", map[string]int{"empty": 0}},
		{"one-byte", map[string]int{"b": 1}},
		{"one-chunk", map[string]int{"c": testChunk}},
		{"chunk-plus-one", map[string]int{"c": testChunk + 1}},
		{"mixed", map[string]int{"e": 0, "a/b": 1, "a/c/d": 3*testChunk + 5, "x": 2 * testChunk}},
		{"many", many},
		{"nested", map[string]int{"a/b/c/d/e/f": 12345, "a/b/g": testChunk - 1}},
		{"duplicate-chunks", map[string]int{"p": 4 * testChunk, "q": 4 * testChunk}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := publishTree(t, tc.name, 7, tc.files)
			out := filepath.Join(t.TempDir(), "out")
			res, err := fx.get(t, fx.id.String(), out)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.files) == 1 {
				for p := range tc.files {
					a, _ := os.ReadFile(filepath.Join(fx.src, p))
					b, err := os.ReadFile(out)
					if err != nil || !bytes.Equal(a, b) {
						t.Fatalf("single file differs: %v", err)
					}
				}
			} else {
				sameTree(t, fx.src, out)
			}
			if res.Bytes != fx.m.TotalSize() {
				t.Fatalf("result says %d bytes, manifest %d", res.Bytes, fx.m.TotalSize())
			}
		})
	}
}

func TestIdenticalChunksStoredOnce(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	src := t.TempDir()
	data := bytes.Repeat([]byte("shoal"), 3*testChunk)
	os.WriteFile(filepath.Join(src, "a"), data, 0o644)
	os.WriteFile(filepath.Join(src, "b"), data, 0o644)
	out := t.TempDir()
	res, err := publish.Publish(context.Background(), publish.Config{Key: key, Out: out, ChunkSize: testChunk, Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := filepath.Glob(filepath.Join(out, layout.ChunkDir, "*", "*"))
	distinct := map[core.Hash]bool{}
	for off := 0; off < len(data); off += testChunk {
		distinct[core.SumSHA256(data[off:min(off+testChunk, len(data))])] = true
	}
	if len(ents) != len(distinct) || res.NewChunks != int64(len(distinct)) {
		t.Fatalf("%d chunk files, %d new, want %d distinct", len(ents), res.NewChunks, len(distinct))
	}
}

func TestGetSingleFileAndDirectory(t *testing.T) {
	fx := publishTree(t, "sel", 11, map[string]int{"a/x": 100, "a/y": testChunk * 2, "b": 5})
	out := filepath.Join(t.TempDir(), "y")
	if _, err := fx.get(t, fx.id.String()+"/a/y", out); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(fx.src, "a/y"))
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Fatal("single file differs")
	}
	dir := filepath.Join(t.TempDir(), "a")
	if _, err := fx.get(t, fx.id.String()+"/a", dir); err != nil {
		t.Fatal(err)
	}
	sameTree(t, filepath.Join(fx.src, "a"), dir)
	if _, err := fx.get(t, fx.id.String()+"/nope", filepath.Join(t.TempDir(), "n")); !errors.Is(err, ErrNoSuch) {
		t.Fatalf("missing path: %v", err)
	}
}

// TestTamperedOriginFails flips one byte in every kind of origin file and
// checks that get fails naming what failed and leaves the output alone.
func TestTamperedOriginFails(t *testing.T) {
	files := map[string]int{"a": 3*testChunk + 17, "d/b": 2 * testChunk}
	fx := publishTree(t, "tamper", 5, files)
	var targets []string
	filepath.WalkDir(fx.layoutDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if st, _ := d.Info(); st.Size() > 0 {
				targets = append(targets, p)
			}
		}
		return err
	})
	if len(targets) < 7 { // manifest, 2 hash layers, ≥4 distinct chunks
		t.Fatalf("only %d origin files to tamper with", len(targets))
	}
	r := rand.New(rand.NewPCG(5, 5))
	for _, p := range targets {
		rel, _ := filepath.Rel(fx.layoutDir, p)
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			orig, _ := os.ReadFile(p)
			bad := bytes.Clone(orig)
			i := r.IntN(len(bad))
			bad[i] ^= 1 << r.IntN(8)
			os.WriteFile(p, bad, 0o644)
			defer os.WriteFile(p, orig, 0o644)

			outDir := t.TempDir()
			out := filepath.Join(outDir, "out")
			os.WriteFile(out+".keep", []byte("unrelated"), 0o644)
			_, err := fx.get(t, fx.id.String(), out)
			if err == nil {
				t.Fatalf("byte %d of %s changed, get succeeded", i, rel)
			}
			var want string
			switch {
			case strings.HasPrefix(rel, layout.ChunkDir):
				want = "chunk "
				if !errors.Is(err, ErrVerify) {
					t.Errorf("want ErrVerify, got %v", err)
				}
			case strings.HasPrefix(rel, layout.HashLayerDir):
				want = "hash layer"
			default:
				want = "manifest"
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name the %s", err, want)
			}
			ents, _ := os.ReadDir(outDir)
			if len(ents) != 1 || ents[0].Name() != "out.keep" {
				t.Errorf("output dir holds %v after a failed get", ents)
			}
		})
	}
}

func TestGetResumesFromCache(t *testing.T) {
	fx := publishTree(t, "resume", 9, map[string]int{"big": 40 * testChunk})
	var served, limit atomic.Int64
	var chunks sync.Map // distinct chunk paths served, for the rerun
	limit.Store(15)
	flaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/"+layout.ChunkDir) {
			chunks.Store(r.URL.Path, true)
			if served.Add(1) > limit.Load() {
				http.NotFound(w, r)
				return
			}
		}
		fx.srv.Handler().ServeHTTP(w, r)
	})
	hs := httptest.NewServer(flaky)
	defer hs.Close()
	cacheDir := t.TempDir()
	out := filepath.Join(t.TempDir(), "big")
	cfg := GetConfig{Origin: hs.URL, Trust: manifest.NewKeySet(manifest.PublicOf(fx.key)), Target: fx.id.String(), Out: out, CacheDir: cacheDir}
	if _, err := Get(context.Background(), cfg); !errors.Is(err, cdn.ErrNotFound) {
		t.Fatalf("first get: want a not-found failure, got %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("failed get left an output")
	}
	served.Store(0)
	chunks.Clear()
	limit.Store(1 << 30)
	res, err := Get(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Chunks verified before the failure stay cached; the rerun fetches
	// exactly the rest (distinct chunks: a request the HTTP client retried
	// on a loaded machine is one chunk).
	cached := res.FromCache / testChunk
	var fetched int64
	chunks.Range(func(any, any) bool { fetched++; return true })
	if cached == 0 || cached > 15 || cached+fetched != 40 {
		t.Fatalf("resume took %d chunks from cache and fetched %d (%d chunk requests); want 1–15 cached and 40 in all", cached, fetched, served.Load())
	}
	want, _ := os.ReadFile(filepath.Join(fx.src, "big"))
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Fatal("resumed file differs")
	}
}

func TestGetUntrustedAndUnreachable(t *testing.T) {
	fx := publishTree(t, "trust", 13, map[string]int{"a": 10})
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{99}, 32))
	_, err := Get(context.Background(), GetConfig{Origin: fx.url, Trust: manifest.NewKeySet(manifest.PublicOf(other)), Target: fx.id.String(), Out: filepath.Join(t.TempDir(), "o"), CacheDir: t.TempDir()})
	if !errors.Is(err, manifest.ErrUntrusted) {
		t.Fatalf("untrusted key: %v", err)
	}
	ln := httptest.NewServer(http.NotFoundHandler())
	dead := ln.URL
	ln.Close()
	_, err = Get(context.Background(), GetConfig{Origin: dead, Trust: manifest.NewKeySet(manifest.PublicOf(fx.key)), Target: fx.id.String(), Out: filepath.Join(t.TempDir(), "o"), CacheDir: t.TempDir()})
	if !errors.Is(err, cdn.ErrUnreachable) {
		t.Fatalf("dead origin: %v", err)
	}
}
