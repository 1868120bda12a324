package core

// Shards and ShardedMin: a bounded table of at least ShardedMin entries is
// split into Shards independently locked parts, so concurrent lookups
// rarely wait on one another; a smaller one stays whole, its bound exact.
const (
	Shards     = 16
	ShardedMin = 256
)

// ShardSizes splits a bound of n entries (n > 0) into the sizes of its
// parts: one part below ShardedMin, else Shards parts that differ by at
// most one and sum to n.
func ShardSizes(n int) []int {
	k := 1
	if n >= ShardedMin {
		k = Shards
	}
	sizes := make([]int, k)
	for i := range sizes {
		sizes[i] = n / k
		if i < n%k {
			sizes[i]++
		}
	}
	return sizes
}
