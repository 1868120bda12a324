package policy

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPickerNext measures one scheduling step for a 4096-chunk content
// with 50 connected peers, each holding a random 60% of it, pipelined 8
// deep: the peer's oldest request arrives (Received), then Next refills its
// pipeline and Requested records the picks. It cycles through the peers
// until the download completes, end-game included, then starts over
// (untimed). Bytes are the chunk bytes delivered per step.
func BenchmarkPickerNext(b *testing.B) {
	const n, peers, depth = 4096, 50, 8
	r := seeded(42)
	bf := make([]*Bitset, peers)
	keys := make([]PeerKey, peers)
	for k := range bf {
		bf[k] = NewBitset(n)
		for i := range n {
			if r.IntN(10) < 6 {
				bf[k].Set(i)
			}
		}
		keys[k] = PeerKey(fmt.Sprintf("peer-%d", k))
	}
	fresh := func() *Picker {
		p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(1), Start: t0})
		for _, f := range bf {
			p.Availability().AddBitfield(f)
		}
		for i := 0; i < 16; i++ { // a small playback window in the deadline lane
			p.SetDeadline(i*7, t0.Add(time.Duration(i+5)*time.Second))
		}
		return p
	}
	p := fresh()
	b.SetBytes(testChunk)
	b.ReportAllocs()
	b.ResetTimer()
	for k := 0; k < b.N; k++ {
		if p.Done() {
			b.StopTimer()
			p = fresh()
			b.StartTimer()
		}
		now := t0.Add(time.Duration(k) * time.Millisecond)
		pk := k % peers
		if ps := p.peers[keys[pk]]; ps != nil && len(ps.chunks) > 0 {
			p.Received(ps.chunks[0], keys[pk], now)
		}
		got := p.Next(now, Source{Key: keys[pk], Has: bf[pk], Rate: 4 << 20}, depth-p.Outstanding(keys[pk]))
		for _, i := range got {
			p.Requested(i, keys[pk], now)
		}
	}
}

// BenchmarkAvailabilityHave measures the O(1) count update on a HAVE.
func BenchmarkAvailabilityHave(b *testing.B) {
	const n = 4096
	a := NewAvailability(n)
	for k := 0; k < b.N; k++ {
		i := (k * 2654435761) % n
		_ = a.AddHave(i)
		if k&1 == 1 {
			_ = a.RemoveHave(i)
		}
	}
}

// BenchmarkPickerNextQuery measures Next alone filling an empty 8-deep
// pipeline (rarest-first walk plus a 16-chunk deadline lane) on the same
// 4096-chunk, 50-peer swarm, nothing yet in flight.
func BenchmarkPickerNextQuery(b *testing.B) {
	const n, peers, depth = 4096, 50, 8
	r := seeded(42)
	p := NewPicker(PickerConfig{Chunks: n, ChunkSize: testChunk, Rand: seeded(1), Start: t0})
	bf := make([]*Bitset, peers)
	for k := range bf {
		bf[k] = NewBitset(n)
		for i := range n {
			if r.IntN(10) < 6 {
				bf[k].Set(i)
			}
		}
		p.Availability().AddBitfield(bf[k])
	}
	for i := 0; i < 16; i++ {
		p.SetDeadline(i*7, t0.Add(time.Duration(i+5)*time.Second))
	}
	b.SetBytes(depth * testChunk)
	b.ReportAllocs()
	for k := 0; k < b.N; k++ {
		pk := k % peers
		if got := p.Next(t0, Source{Key: PeerKey("q"), Has: bf[pk], Rate: 4 << 20}, depth); len(got) != depth {
			b.Fatalf("Next returned %d chunks", len(got))
		}
	}
}
