package swarm

import (
	"context"

	"github.com/shoal-cdn/shoal/core"
)

// Store is what a session needs of its chunk cache; *store.Store is the
// one peers use. Put verifies data against h before storing it (a mismatch
// is store.ErrHashMismatch; a store that cannot write wraps
// store.ErrWriteFailed), and a chunk stays readable until it is removed,
// which OnRemove reports.
type Store interface {
	Has(h core.Hash) bool
	Put(h core.Hash, data []byte) error
	// ReadInto reads chunk h into buf, returning its length.
	ReadInto(h core.Hash, buf []byte) (int, error)
	// Writable reports whether chunks can be stored now (it may probe);
	// WriteErr is the last known state, without probing.
	Writable() error
	WriteErr() error
	// OnRemove calls fn for every chunk removed from now on, until cancel.
	OnRemove(fn func(h core.Hash)) (cancel func())
}

// Origin is what a session needs of the origin or CDN in front of it;
// *cdn.Client is the one peers use. Chunk returns chunk h of size bytes,
// unverified (the store verifies it).
type Origin interface {
	Chunk(ctx context.Context, h core.Hash, size int64) ([]byte, error)
}
