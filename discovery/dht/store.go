package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

// DefaultMaxRecords bounds the provider records a node stores (each a few
// hundred bytes with its addresses): a server that anyone can send records
// to must not grow without end. Records expire after 48 h.
const DefaultMaxRecords = 100_000

// ErrStoreFull means the node holds MaxRecords records and refuses more
// until some expire.
var ErrStoreFull = errors.New("DHT record store full")

// boundedStore is an in-memory datastore that refuses new keys beyond max.
type boundedStore struct {
	ds.Batching
	max int

	mu sync.Mutex // guards n, and makes Put's has-then-put and Delete atomic
	n  int
}

func newBoundedStore(max int) *boundedStore {
	return &boundedStore{Batching: dssync.MutexWrap(ds.NewMapDatastore()), max: max}
}

func (s *boundedStore) Put(ctx context.Context, k ds.Key, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	has, err := s.Batching.Has(ctx, k)
	if err != nil {
		return err
	}
	if !has && s.n >= s.max {
		return fmt.Errorf("%w: %d records", ErrStoreFull, s.n)
	}
	if err := s.Batching.Put(ctx, k, v); err != nil {
		return err
	}
	if !has {
		s.n++
	}
	return nil
}

func (s *boundedStore) Delete(ctx context.Context, k ds.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	has, err := s.Batching.Has(ctx, k)
	if err != nil || !has {
		return err
	}
	if err := s.Batching.Delete(ctx, k); err != nil {
		return err
	}
	s.n--
	return nil
}

// Batch applies its operations through Put and Delete, so they count.
func (s *boundedStore) Batch(ctx context.Context) (ds.Batch, error) {
	return ds.NewBasicBatch(s), nil
}
