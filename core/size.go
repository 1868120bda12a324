package core

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Chunk-size limits. Chunk sizes are powers of two in [MinChunkSize, MaxChunkSize].
const (
	MinChunkSize     = 16 << 10
	MaxChunkSize     = 16 << 20
	DefaultChunkSize = 256 << 10
)

// ErrBadChunkSize is returned for a chunk size outside the limits or not a power of two.
var ErrBadChunkSize = errors.New("bad chunk size")

// CheckChunkSize reports whether n is an acceptable chunk size.
func CheckChunkSize(n int64) error {
	if n < MinChunkSize || n > MaxChunkSize || n&(n-1) != 0 {
		return fmt.Errorf("%w: %d: want a power of two from %d to %d", ErrBadChunkSize, n, MinChunkSize, MaxChunkSize)
	}
	return nil
}

// ChunkCount returns how many chunks of chunkSize a file of size bytes has.
// An empty file has none.
func ChunkCount(size, chunkSize int64) int64 {
	if size <= 0 {
		return 0
	}
	return (size + chunkSize - 1) / chunkSize
}

// ChunkLen returns the length of chunk i of a file of size bytes.
func ChunkLen(size, chunkSize, i int64) int64 {
	off := i * chunkSize
	if off >= size {
		return 0
	}
	return min(chunkSize, size-off)
}

// ParseSize parses a byte count such as "262144", "256KiB", "256k", "1.5GiB" or "10MB".
// Binary and decimal units are both accepted; a bare k/m/g/t means binary.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[unit]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || v < 0 {
		return 0, fmt.Errorf("bad size %q: want a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)", s)
	}
	return int64(v * mult), nil
}

// ParseRate parses a bit rate such as "20Mbit", "100mbps", "1.5Gbit/s" or a byte
// rate such as "10MB/s", "512KiB/s", and returns bytes per second.
func ParseRate(s string) (float64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "/s")
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	v, err := strconv.ParseFloat(t[:i], 64)
	unit := strings.TrimSpace(t[i:])
	bits := map[string]float64{"bit": 1, "bps": 1, "kbit": 1e3, "kbps": 1e3, "mbit": 1e6, "mbps": 1e6, "gbit": 1e9, "gbps": 1e9}
	if err == nil && v >= 0 {
		if m, ok := bits[unit]; ok {
			return v * m / 8, nil
		}
		if n, err := ParseSize(t); err == nil {
			return float64(n), nil
		}
	}
	return 0, fmt.Errorf("bad rate %q: want e.g. 20Mbit, 100mbps or 10MB/s", s)
}
