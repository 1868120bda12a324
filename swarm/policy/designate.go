package policy

import "iter"

// PeerSeed derives the seed that ranks a peer in origin designations from
// its key (FNV-1a, then SplitMix64's finaliser), so every peer computes the
// same seed for the same key without exchanging anything.
func PeerSeed(k PeerKey) uint64 {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return Mix64(uint64(h))
}

// Mix64 is SplitMix64's finaliser: a cheap bijection that spreads bits.
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// OriginRank orders peers for chunk's origin designation: the peer with the
// lowest rank is the one that fetches it. A different pseudo-random order
// per chunk spreads the origin fetches evenly over the swarm.
func OriginRank(peerSeed uint64, chunk int) uint64 {
	return Mix64(peerSeed ^ uint64(chunk)*0x9e3779b97f4a7c15)
}

// Ahead counts the rivals that rank before the peer with seed self for
// chunk's origin fetch, given the seeds of the connected peers that lack the
// chunk too (nil: none). 0 means self is the chunk's designated fetcher. The
// session applies this to fallback chunks that are not due yet, so that in a
// well-connected swarm each leaves the origin about once and spreads from
// there (the k-th ranked peer takes over only after a wait proportional to
// k); the simulator applies the same rule.
func Ahead(self uint64, chunk int, rivals iter.Seq[uint64]) int {
	if rivals == nil {
		return 0
	}
	mine, n := OriginRank(self, chunk), 0
	for s := range rivals {
		if OriginRank(s, chunk) < mine {
			n++
		}
	}
	return n
}

// Designated reports whether self ranks first for chunk: Ahead(...) == 0,
// but it stops at the first rival ranked before it.
func Designated(self uint64, chunk int, rivals iter.Seq[uint64]) bool {
	if rivals == nil {
		return true
	}
	mine := OriginRank(self, chunk)
	for s := range rivals {
		if OriginRank(s, chunk) < mine {
			return false
		}
	}
	return true
}
