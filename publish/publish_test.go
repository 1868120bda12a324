package publish

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
)

var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))

func TestPublishRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "x", "same")
	b := filepath.Join(dir, "y", "same")
	for _, p := range []string{a, b} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("1"), 0o644)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no paths", Config{Key: testKey, Out: t.TempDir()}},
		{"missing path", Config{Key: testKey, Out: t.TempDir(), Paths: []string{filepath.Join(dir, "nope")}}},
		{"duplicate names", Config{Key: testKey, Out: t.TempDir(), Paths: []string{a, b}}},
		{"bad chunk size", Config{Key: testKey, Out: t.TempDir(), Paths: []string{a}, ChunkSize: 1000}},
		{"no key", Config{Out: t.TempDir(), Paths: []string{a}}},
		{"special file", Config{Key: testKey, Out: t.TempDir(), Paths: []string{"/dev/null"}}},
		{"manifest version", Config{Key: testKey, Out: t.TempDir(), Paths: []string{a}, ManifestVersion: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Publish(context.Background(), tc.cfg); !errors.Is(err, ErrInput) {
				t.Fatalf("got %v, want ErrInput", err)
			}
		})
	}
}

func TestPublishLayout(t *testing.T) {
	src := t.TempDir()
	data := make([]byte, 3*core.MinChunkSize+10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	os.WriteFile(filepath.Join(src, "f.bin"), data, 0o644)
	out := t.TempDir()
	res, err := Publish(context.Background(), Config{Key: testKey, Out: out, ChunkSize: core.MinChunkSize, Paths: []string{src}, Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := os.ReadFile(filepath.Join(out, layout.ManifestPath(res.ID)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.DecodeTrusted(enc, res.ID, manifest.PublicOf(testKey))
	if err != nil {
		t.Fatal(err)
	}
	f := m.Files[0]
	if f.Path != "f.bin" || f.Size != int64(len(data)) || f.Chunks != 4 || m.Name != "n" {
		t.Fatalf("manifest file %+v name %q", f, m.Name)
	}
	layer, err := os.ReadFile(filepath.Join(out, layout.HashLayerPath(f.Root)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := manifest.ParseHashLayer(f, layer)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range l {
		c, err := os.ReadFile(filepath.Join(out, layout.ChunkPath(h)))
		if err != nil || sha256.Sum256(c) != h || !bytes.Equal(c, data[i*core.MinChunkSize:min((i+1)*core.MinChunkSize, len(data))]) {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	// Publishing again writes no new chunks and yields a new content (new time) or the same.
	res2, err := Publish(context.Background(), Config{Key: testKey, Out: out, ChunkSize: core.MinChunkSize, Paths: []string{src}, Name: "n", Created: m.Created})
	if err != nil || res2.NewChunks != 0 || res2.ID != res.ID {
		t.Fatalf("republish: %v, %d new chunks, same ID %v", err, res2.NewChunks, res2.ID == res.ID)
	}
	tmps, _ := filepath.Glob(filepath.Join(out, "*", ".tmp-*"))
	if len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
}

// TestPublishPaged checks a paged manifest's layout: multi-chunk files'
// roots only in root pages, each page at its hash, and every hash layer
// reproducing the root its page gives.
func TestPublishPaged(t *testing.T) {
	src := t.TempDir()
	const multi = manifest.RootsPerPage + 2
	for i := range multi {
		data := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, core.MinChunkSize+i)
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%03d.bin", i)), data, 0o644)
	}
	os.WriteFile(filepath.Join(src, "small.txt"), []byte("small"), 0o644)
	out := t.TempDir()
	res, err := Publish(context.Background(), Config{Key: testKey, Out: out, ChunkSize: core.MinChunkSize, Paths: []string{src}, ManifestVersion: manifest.VersionPaged})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := os.ReadFile(filepath.Join(out, layout.ManifestPath(res.ID)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.DecodeTrusted(enc, res.ID, manifest.PublicOf(testKey))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Paged() || len(m.RootPages) != 2 {
		t.Fatalf("version %d with %d root pages", m.Version, len(m.RootPages))
	}
	var pages [][]core.Hash
	for i, h := range m.RootPages {
		b, err := os.ReadFile(filepath.Join(out, layout.RootPagePath(h)))
		if err != nil {
			t.Fatal(err)
		}
		roots, err := m.ParseRootPage(i, b)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, roots)
	}
	paged := m.PagedFiles()
	if len(paged) != multi {
		t.Fatalf("%d paged files, want %d", len(paged), multi)
	}
	for n, fi := range paged {
		page, slot := manifest.RootPageSlot(n)
		f := m.Files[fi]
		f.Root = pages[page][slot]
		b, err := os.ReadFile(filepath.Join(out, layout.HashLayerPath(f.Root)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := manifest.ParseHashLayer(f, b); err != nil {
			t.Fatal(err)
		}
	}
	if small, _ := m.File("small.txt"); small.Root.IsZero() {
		t.Fatal("a single-chunk file lost its inline root")
	}
}
