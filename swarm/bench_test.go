package swarm

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/store"
)

// BenchmarkPeerToPeer moves one content from a seeder to a leecher without
// origin access: the whole engine path (requests, pipelining, framing,
// verification and fsynced stores) over an in-memory network and over real
// libp2p TCP hosts on loopback.
func BenchmarkPeerToPeer(b *testing.B) {
	const size, chunk = 256 << 20, 256 << 10
	c, seedStore := benchSeedStore(b, 7, size, chunk)
	b.Run("mem", func(b *testing.B) {
		mem := netx.NewMemNetwork()
		k := 0
		benchTransfer(b, c, seedStore, func() netx.Host {
			k++
			h, err := mem.NewHost(netx.PeerID(fmt.Sprintf("bench-%d", k)))
			if err != nil {
				b.Fatal(err)
			}
			return h
		})
	})
	b.Run("libp2p-tcp", func(b *testing.B) {
		benchTransfer(b, c, seedStore, func() netx.Host {
			h, err := netx.NewLibp2pHost(context.Background(), netx.Libp2pConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
			if err != nil {
				b.Fatal(err)
			}
			return h
		})
	})
}

// benchTransfer runs a seeder of c on a new host and, per iteration, a new
// leecher with an empty store that fetches everything from it. Only the
// fetch is timed.
func benchTransfer(b *testing.B, c *Content, seedStore *store.Store, newHost func() netx.Host) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seedHost := newHost()
	defer seedHost.Close()
	seed := NewSession(seedHost.ID(), Config{Content: c, Store: seedStore})
	NewNode(seedHost, nil).Add(seed)
	go seed.Run(ctx)
	for !seed.running() {
		runtime.Gosched()
	}
	var size int64
	for i := range c.Len() {
		size += int64(c.Size(i))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "leech")
		st, err := store.Open(store.Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		h := newHost()
		node := NewNode(h, nil)
		sess := NewSession(h.ID(), Config{Content: c, Store: st})
		node.Add(sess)
		lctx, lcancel := context.WithCancel(ctx)
		ran := make(chan struct{})
		go func() { sess.Run(lctx); close(ran) }()
		for !sess.running() {
			runtime.Gosched()
		}
		b.StartTimer()
		if err := node.Connect(lctx, sess, seedHost.ID(), seedHost.Addrs()); err != nil {
			b.Fatal(err)
		}
		<-sess.Done()
		b.StopTimer()
		if st := sess.Stats(); st.BytesFromPeers != size || st.BadChunks != 0 {
			b.Fatalf("leecher stats %+v", st)
		}
		lcancel()
		<-ran
		h.Close()
		st.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

// benchSeedStore builds a one-file content whose chunks come from (seed,
// index) — no publisher or origin needed — and a store holding all of it.
func benchSeedStore(b *testing.B, seed uint64, size, chunk int64) (*Content, *store.Store) {
	b.Helper()
	st, err := store.Open(store.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	n := (size + chunk - 1) / chunk
	layer := make(manifest.HashLayer, n)
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	for i := range n {
		binary.LittleEndian.PutUint64(key[8:], uint64(i))
		data := make([]byte, core.ChunkLen(size, chunk, i))
		rand.NewChaCha8(key).Read(data)
		layer[i] = core.SumSHA256(data)
		if err := st.Put(layer[i], data); err != nil {
			b.Fatal(err)
		}
	}
	m := &manifest.Manifest{
		Version: manifest.Version, Name: "bench", ChunkSize: chunk, Hash: manifest.HashSHA256,
		Files: []manifest.File{{Path: "bench.bin", Size: size, Chunks: n}},
	}
	c, err := NewContent(core.ContentID(core.SumSHA256([]byte(fmt.Sprint("bench", seed, size, chunk)))), m, []manifest.HashLayer{layer})
	if err != nil {
		b.Fatal(err)
	}
	return c, st
}
