package bench

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/publish"
	"github.com/shoal-cdn/shoal/swarm"
)

// publishContent writes size bytes generated from seed to a file, publishes
// it into a layout under dir/origin, deletes the source (the layout holds
// the chunks) and returns the content as the swarm sees it. The key and the
// creation time come from the seed too, so the content ID is reproducible.
func publishContent(ctx context.Context, dir string, seed uint64, size, chunkSize int64) (*swarm.Content, string, error) {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, "", fmt.Errorf("bench: %w", err)
	}
	file := filepath.Join(src, fmt.Sprintf("bench-%d.bin", seed))
	if err := writeRandom(file, seed, size); err != nil {
		return nil, "", err
	}
	defer os.Remove(file)
	var ks [32]byte
	binary.LittleEndian.PutUint64(ks[:], seed)
	copy(ks[8:], "shoal bench publisher key")
	out := filepath.Join(dir, "origin")
	res, err := publish.Publish(ctx, publish.Config{
		Key: ed25519.NewKeyFromSeed(ks[:]), Out: out, ChunkSize: chunkSize,
		Paths: []string{file}, Created: time.Unix(1_700_000_000, 0).UTC(),
	})
	if err != nil {
		return nil, "", fmt.Errorf("bench: publish: %w", err)
	}
	var layers []manifest.HashLayer
	for _, f := range res.Manifest.Files {
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(layout.HashLayerPath(f.Root))))
		if err != nil {
			return nil, "", fmt.Errorf("bench: %w", err)
		}
		l, err := manifest.ParseHashLayer(f, b)
		if err != nil {
			return nil, "", fmt.Errorf("bench: hash layer of %s: %w", f.Path, err)
		}
		layers = append(layers, l)
	}
	c, err := swarm.NewContent(res.ID, res.Manifest, layers)
	if err != nil {
		return nil, "", fmt.Errorf("bench: %w", err)
	}
	return c, out, nil
}

// writeRandom streams size pseudo-random bytes from seed into path, so the
// content never has to fit in memory.
func writeRandom(path string, seed uint64, size int64) error {
	var cs [32]byte
	binary.LittleEndian.PutUint64(cs[:], seed)
	r := rand.NewChaCha8(cs)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		r.Read(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			f.Close()
			return fmt.Errorf("bench: write %s: %w", path, err)
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	return f.Close()
}
