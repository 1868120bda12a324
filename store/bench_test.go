package store

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

const benchPool = 64 // distinct chunks; 16 MiB at the default chunk size

func benchChunks(b *testing.B) ([][]byte, []core.Hash) {
	datas := make([][]byte, benchPool)
	hashes := make([]core.Hash, benchPool)
	for i := range benchPool {
		datas[i], hashes[i] = gen(fmt.Sprint("bench ", i), core.DefaultChunkSize)
	}
	return datas, hashes
}

// BenchmarkPut writes 256 KiB chunks, hash check, fsyncs and eviction included:
// the quota holds half the pool, so every Put of the cycling pool is a real write.
func BenchmarkPut(b *testing.B) {
	datas, hashes := benchChunks(b)
	s := open(b, Config{Quota: benchPool / 2 * core.DefaultChunkSize})
	b.SetBytes(core.DefaultChunkSize)
	for i := 0; b.Loop(); i++ {
		j := i % benchPool
		if err := s.Put(hashes[j], datas[j]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutParallel shows how concurrent Puts share fsync and directory-sync
// cost.
func BenchmarkPutParallel(b *testing.B) {
	datas, hashes := benchChunks(b)
	s := open(b, Config{Quota: benchPool / 2 * core.DefaultChunkSize})
	var next atomic.Int64
	b.SetBytes(core.DefaultChunkSize)
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			j := int(next.Add(1)) % benchPool
			if err := s.Put(hashes[j], datas[j]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGet(b *testing.B) {
	for _, verify := range []bool{false, true} {
		b.Run(fmt.Sprintf("verify=%v", verify), func(b *testing.B) {
			datas, hashes := benchChunks(b)
			s := open(b, Config{VerifyOnRead: verify})
			for i := range benchPool {
				mustPut(b, s, datas[i], hashes[i])
			}
			b.SetBytes(core.DefaultChunkSize)
			for i := 0; b.Loop(); i++ {
				if _, err := s.Get(hashes[i%benchPool]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadInto(b *testing.B) {
	datas, hashes := benchChunks(b)
	s := open(b, Config{})
	for i := range benchPool {
		mustPut(b, s, datas[i], hashes[i])
	}
	buf := make([]byte, core.DefaultChunkSize)
	b.SetBytes(core.DefaultChunkSize)
	for i := 0; b.Loop(); i++ {
		if _, err := s.ReadInto(hashes[i%benchPool], buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen2GiB times Open of a cache holding 2 GiB in 256 KiB chunks (8,192
// files), built once in a temp directory; it reports the median of the Opens as
// open-ms. The files are in the page cache after the build, so this is the
// warm-start cost: what Open itself does, not the disk.
func BenchmarkOpen2GiB(b *testing.B) {
	const total = 2 << 30
	dir := b.TempDir()
	s := open(b, Config{Dir: dir, NoSync: true})
	for i := range total / core.DefaultChunkSize {
		data, h := gen(fmt.Sprint("open bench ", i), core.DefaultChunkSize)
		mustPut(b, s, data, h)
	}
	s.Close()
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		s, err := Open(Config{Dir: dir})
		took = append(took, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if bytes, _ := s.Usage(); bytes != total {
			b.Fatalf("Usage %d bytes after Open, want %d", bytes, total)
		}
		s.Close()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "open-ms")
}
