package policy

import (
	"math"
	"time"
)

// PipelineDepth is how many requests to keep in flight to a source so that
// the bytes outstanding cover rate × targetLatency: enough that the link
// never idles while a request round-trips, not so many that a slow peer
// hoards chunks (BitTorrent's request-queue sizing). The result is clamped
// to [min, max]; an unmeasured rate (<= 0) gets min. If min > max, max wins.
func PipelineDepth(rate float64, chunkSize int64, targetLatency time.Duration, min, max int) int {
	if min > max {
		min = max
	}
	if rate <= 0 || chunkSize <= 0 || targetLatency <= 0 || math.IsNaN(rate) {
		return min
	}
	want := math.Ceil(rate * targetLatency.Seconds() / float64(chunkSize))
	if want < float64(min) {
		return min
	}
	if want > float64(max) {
		return max
	}
	return int(want)
}
