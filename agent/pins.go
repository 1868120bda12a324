package agent

import (
	"sync"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/store"
	"github.com/shoal-cdn/shoal/swarm"
)

// pinSet pins the chunks of a reader's window in the cache, so eviction
// for quota never removes a chunk between its arrival and its being sent,
// and unpins each once sent. Owned by one stream: hold runs on its reader
// goroutine, release on its writer.
type pinSet struct {
	st     *store.Store
	c      *swarm.Content
	mu     sync.Mutex
	pinned map[int]core.Hash // guarded by mu
}

func newPinSet(st *store.Store, c *swarm.Content) *pinSet {
	return &pinSet{st: st, c: c, pinned: map[int]core.Hash{}}
}

// hold pins chunks [from, to) not pinned yet.
func (ps *pinSet) hold(from, to int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for i := from; i < to; i++ {
		if _, ok := ps.pinned[i]; !ok {
			h := ps.c.Hash(i)
			ps.st.Pin(h)
			ps.pinned[i] = h
		}
	}
}

// release unpins chunk i.
func (ps *pinSet) release(i int) {
	ps.mu.Lock()
	h, ok := ps.pinned[i]
	delete(ps.pinned, i)
	ps.mu.Unlock()
	if ok {
		ps.st.Unpin(h) // may evict: outside our lock
	}
}

// releaseAll unpins everything still pinned.
func (ps *pinSet) releaseAll() {
	ps.mu.Lock()
	hs := make([]core.Hash, 0, len(ps.pinned))
	for _, h := range ps.pinned {
		hs = append(hs, h)
	}
	clear(ps.pinned)
	ps.mu.Unlock()
	for _, h := range hs {
		ps.st.Unpin(h)
	}
}
