// Package demo runs every Shoal role in one process on loopback: it
// publishes a generated sample, serves it from an origin and fetches it
// back, printing what happened. It imports the roles and is imported only by
// cmd/shoal.
package demo

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// writeSample writes a small, deterministic content tree: a few files of
// pseudo-random bytes from (name, seed), one of them repeated so that
// deduplication shows.
func writeSample(dir string, size int64) error {
	files := []struct {
		path string
		frac float64
	}{
		{"sample/video.bin", 0.6},
		{"sample/update/app.tar", 0.3},
		{"sample/update/app-copy.tar", 0.0}, // same bytes as app.tar
		{"sample/README.txt", 0},
	}
	r := rand.New(rand.NewPCG(42, 7))
	var app []byte
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		var b []byte
		switch {
		case f.path == "sample/README.txt":
			b = []byte("A sample content published by `shoal demo`.\n")
		case f.frac == 0:
			b = app
		default:
			b = make([]byte, int64(float64(size)*f.frac))
			for i := 0; i+8 <= len(b); i += 8 {
				v := r.Uint64()
				for k := range 8 {
					b[i+k] = byte(v >> (8 * k))
				}
			}
			if f.path == "sample/update/app.tar" {
				app = b
			}
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("demo sample: %w", err)
		}
	}
	return nil
}
