package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-cdn/shoal/manifest"
)

// BenchmarkGet fetches a 64 MiB file from a loopback origin into a fresh
// cache and output each iteration: HTTP, verification of every chunk,
// the cache's atomic writes and the output file.
func BenchmarkGet(b *testing.B) {
	const size = 64 << 20
	fx := publishTree(b, "bench", 3, map[string]int{"big": size})
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		b.StartTimer()
		_, err := Get(context.Background(), GetConfig{
			Origin: fx.url, Trust: manifest.NewKeySet(manifest.PublicOf(fx.key)), Target: fx.id.String(),
			Out: filepath.Join(dir, "out"), CacheDir: filepath.Join(dir, "cache"),
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}
