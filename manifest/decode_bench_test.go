package manifest

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// vodManifest is a signed HLS manifest shaped like the stream benchmark's
// VOD: rends renditions of segs 2 s segments each, a media playlist per
// rendition and a master playlist.
func vodManifest(tb testing.TB, rends, segs int) *Manifest {
	tb.Helper()
	const chunk = 64 << 10
	m := &Manifest{Version: Version, Name: "bench-vod", Created: time.Unix(1_700_000_000, 0).UTC(), ChunkSize: chunk, Hash: HashSHA256}
	media := &Media{Kind: MediaHLS, Entry: "master.m3u8"}
	m.Files = append(m.Files, File{Path: "master.m3u8", Size: 200, Chunks: 1, MediaType: "application/vnd.apple.mpegurl", Root: core.SumSHA256([]byte("master"))})
	for r := range rends {
		pl := fmt.Sprintf("r%d/index.m3u8", r)
		m.Files = append(m.Files, File{Path: pl, Size: 30 * int64(segs), Chunks: core.ChunkCount(30*int64(segs), chunk), MediaType: "application/vnd.apple.mpegurl", Root: core.SumSHA256([]byte(pl))})
		rd := Rendition{ID: pl, Playlist: pl, Bandwidth: int64(1_000_000 * (r + 1))}
		for q := range segs {
			p := fmt.Sprintf("r%d/seg-%06d.ts", r, q)
			size := int64(250_000 * (r + 1))
			m.Files = append(m.Files, File{Path: p, Size: size, Chunks: core.ChunkCount(size, chunk), MediaType: "video/mp2t", Root: core.SumSHA256([]byte(p))})
			rd.Segments = append(rd.Segments, MediaSegment{Path: p, DurationMs: 2000, Seq: int64(q)})
		}
		media.Renditions = append(media.Renditions, rd)
	}
	m.Media = media
	if err := m.Sign(testKey(1)); err != nil {
		tb.Fatal(err)
	}
	return m
}

// BenchmarkDecodeVOD2700 is what a viewer's first request costs in CPU
// once the manifest's bytes are in: decoding and verifying a signed
// manifest of 2,700 segments (the stream benchmark's VOD), by Decode and,
// for comparison, by encoding/json and a re-encoding (the general path,
// which was the only one before the fast path existed).
func BenchmarkDecodeVOD2700(b *testing.B) {
	enc := encode(b, vodManifest(b, 3, 900))
	id := core.ContentID(core.SumSHA256(enc))
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(enc)
	zw.Close()
	b.Logf("manifest of %d files: %d bytes, %d gzip-encoded", len(vodManifest(b, 3, 900).Files), len(enc), gz.Len())
	paged := encode(b, pagedVOD(b, 3, 900))
	pagedID := core.ContentID(core.SumSHA256(paged))
	gz.Reset()
	zw.Reset(&gz)
	zw.Write(paged)
	zw.Close()
	b.Logf("paged: %d bytes, %d gzip-encoded, and %d root pages of at most %d bytes", len(paged), gz.Len(), len(pagedVOD(b, 3, 900).RootPages), RootPageSize)
	b.Run("decode paged", func(b *testing.B) {
		b.SetBytes(int64(len(paged)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeTrusted(paged, pagedID, PublicOf(testKey(1))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeTrusted(enc, id, PublicOf(testKey(1))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			core.SumSHA256(enc)
			m, ok := decodeGeneral(enc)
			if !ok || m.validate() != nil {
				b.Fatal("general path refused the manifest")
			}
			msg, _ := signedFromCanonical(enc, m.Signature, signingDomain(m.Version))
			if !ed25519.Verify(m.Publisher[:], msg, m.Signature) {
				b.Fatal("bad signature")
			}
		}
	})
}
