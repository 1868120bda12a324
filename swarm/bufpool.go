package swarm

import "sync"

// bufPool recycles chunk-sized buffers for DATA payloads, both those read
// off the wire and those read from the store to serve: at hundreds of MB/s,
// allocating (and zeroing, and collecting) a fresh buffer per chunk costs a
// visible share of a core.
type bufPool struct {
	size int
	pool sync.Pool
}

func newBufPool(size int) *bufPool {
	b := &bufPool{size: size}
	b.pool.New = func() any { s := make([]byte, size); return &s }
	return b
}

// get returns a buffer of length n; only n ≤ size comes from the pool.
func (b *bufPool) get(n int) []byte {
	if n > b.size {
		return make([]byte, n)
	}
	return (*b.pool.Get().(*[]byte))[:n]
}

// put recycles a buffer from get. The caller must not use it afterwards.
func (b *bufPool) put(s []byte) {
	if cap(s) != b.size {
		return
	}
	s = s[:cap(s)]
	b.pool.Put(&s)
}
