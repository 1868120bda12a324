package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/shoal-cdn/shoal/media"
)

// streamSource stands in for a live encoder: it writes MPEG-TS-named
// segments of bitrate × duration pseudo-random bytes, one per segment
// duration in real time, and a sliding-window HLS media playlist, into a
// directory, the way `ffmpeg -f hls` does. The bytes are not decodable;
// nothing in the benchmark decodes. (The VOD is made by makeVOD.)
type streamSource struct {
	cfg  *StreamConfig
	dir  string
	next int64 // next segment number to write
	// written counts segments written, read while run writes more.
	written atomic.Int64
}

const sourcePlaylist = "index.m3u8"

func newStreamSource(cfg *StreamConfig, dir string) (*streamSource, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return &streamSource{cfg: cfg, dir: dir}, nil
}

// prime writes what exists before the first viewer arrives: a full window
// of a stream already running.
func (s *streamSource) prime() error {
	for range streamWindow {
		if err := s.writeSegment(); err != nil {
			return err
		}
	}
	return s.writePlaylist()
}

// run adds a segment every segment duration until ctx ends.
func (s *streamSource) run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Segment)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.writeSegment(); err != nil {
			return err
		}
		if err := s.writePlaylist(); err != nil {
			return err
		}
	}
}

func segmentName(seq int64) string { return fmt.Sprintf("seg-%06d.ts", seq) }

// writeSegment writes segment s.next, its bytes drawn from (seed, number)
// so both runs stream the same media.
func (s *streamSource) writeSegment() error {
	b := segmentData(s.cfg.Seed, 0, s.next, s.cfg.segmentBytes())
	if err := writeAtomic(filepath.Join(s.dir, segmentName(s.next)), b); err != nil {
		return err
	}
	s.next++
	s.written.Add(1)
	return nil
}

// segmentData is n pseudo-random bytes for segment seq of rendition rend
// (0 for the live stream), drawn from the seed.
func segmentData(seed uint64, rend int, seq, n int64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(seq))
	copy(key[16:], "shoal stream")
	key[31] = byte(rend)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// writePlaylist lists the newest window.
func (s *streamSource) writePlaylist() error {
	first := max(0, s.next-streamWindow)
	pl := &media.MediaPlaylist{
		Version:        3,
		TargetDuration: targetDuration(s.cfg.Segment),
		MediaSequence:  first,
	}
	for q := first; q < s.next; q++ {
		pl.Segments = append(pl.Segments, media.Segment{URI: segmentName(q), Duration: s.cfg.Segment, Seq: q})
	}
	b, err := pl.Encode()
	if err != nil {
		return fmt.Errorf("bench: source playlist: %w", err)
	}
	return writeAtomic(filepath.Join(s.dir, sourcePlaylist), b)
}

// targetDuration is EXT-X-TARGETDURATION for segments of d: whole seconds,
// rounded up.
func targetDuration(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// writeAtomic replaces dst with data by a rename, so readers (the
// publisher, the CDN) never see a torn file.
func writeAtomic(dst string, data []byte) error {
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}
