package publish

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

const benchSize = 256 << 20

// BenchmarkSHA256 is the yardstick: single-core SHA-256 over 256 KiB chunks.
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		sha256.Sum256(buf)
	}
}

// BenchmarkPublish publishes a 256 MiB file (from the page cache) into a
// fresh layout each iteration: read, hash, write chunks, hash layer, manifest.
func BenchmarkPublish(b *testing.B) {
	src := filepath.Join(b.TempDir(), "big.bin")
	data := make([]byte, benchSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(data); i += 8 {
		v := r.Uint64()
		for k := 0; k < 8; k++ {
			data[i+k] = byte(v >> (8 * k))
		}
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	data = nil
	b.SetBytes(benchSize)
	for b.Loop() {
		b.StopTimer()
		out := b.TempDir()
		b.StartTimer()
		if _, err := Publish(context.Background(), Config{Key: testKey, Out: out, Paths: []string{src}}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(out)
		b.StartTimer()
	}
}
