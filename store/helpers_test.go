package store

import (
	"crypto/sha256"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

// gen returns size bytes generated from name, and their hash, so a failing case
// reproduces from its name.
func gen(name string, size int) ([]byte, core.Hash) {
	b := make([]byte, size)
	r := rand.NewChaCha8(sha256.Sum256([]byte(name)))
	r.Read(b)
	return b, core.SumSHA256(b)
}

func open(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustPut(t testing.TB, s *Store, data []byte, h core.Hash) {
	t.Helper()
	if err := s.Put(h, data); err != nil {
		t.Fatalf("Put %s: %v", h.Short(), err)
	}
}

// onDisk returns every file below dir except the lock file, by path relative to
// dir, with its size.
func onDisk(t testing.TB, dir string) map[string]int64 {
	t.Helper()
	files := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == ".lock" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files[rel] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkDiskMatchesIndex asserts that every chunk file hashes to its name and
// that Usage agrees with what is on disk.
func checkDiskMatchesIndex(t *testing.T, s *Store) {
	t.Helper()
	var total int64
	files := onDisk(t, s.cfg.Dir)
	for rel, size := range files {
		name := filepath.Base(rel)
		if strings.HasPrefix(name, tempPrefix) {
			t.Errorf("temp file %s left behind", rel)
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.cfg.Dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if core.SumSHA256(b).String() != name {
			t.Errorf("%s does not hash to its name", rel)
		}
		total += size
	}
	bytes, chunks := s.Usage()
	if bytes != total || chunks != len(files) {
		t.Errorf("Usage = %d bytes in %d chunks; disk has %d bytes in %d files", bytes, chunks, total, len(files))
	}
}
