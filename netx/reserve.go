package netx

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
)

// Reservation timing: the first try at start waits at most reserveFirstWait
// (so the first announce already carries the circuit addresses), failures
// back off from reserveBackoffMin doubling to reserveBackoffMax with
// jitter, and a slot is renewed when a quarter of its life is left.
const (
	reserveFirstWait  = 5 * time.Second
	reserveBackoffMin = time.Second
	reserveBackoffMax = time.Minute
)

// reserver keeps a slot on each configured relay, so peers can reach this
// host through it, and knows the circuit addresses of the slots it holds.
type reserver struct {
	h      host.Host
	relays []peer.AddrInfo
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex           // guards held
	held map[peer.ID][]string // circuit addresses per relay with a live slot
}

// startReserver reserves on every relay (waiting up to reserveFirstWait for
// the first answers) and keeps renewing until close.
func startReserver(h host.Host, relays []peer.AddrInfo) *reserver {
	ctx, cancel := context.WithCancel(context.Background())
	r := &reserver{h: h, relays: relays, cancel: cancel, held: map[peer.ID][]string{}}
	first := make(chan struct{}, len(relays))
	for _, ai := range relays {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.keep(ctx, ai, first)
		}()
	}
	t := time.NewTimer(reserveFirstWait)
	defer t.Stop()
	for range relays {
		select {
		case <-first:
		case <-t.C:
			return r
		}
	}
	return r
}

// keep holds a slot on relay ai until ctx ends; it signals first after its
// first attempt.
func (r *reserver) keep(ctx context.Context, ai peer.AddrInfo, first chan<- struct{}) {
	var circuits []string
	for _, a := range ai.Addrs {
		circuits = append(circuits, a.String()+"/p2p/"+ai.ID.String()+"/p2p-circuit")
	}
	backoff := reserveBackoffMin
	signalled := false
	for {
		rctx, cancel := context.WithTimeout(ctx, reserveFirstWait)
		rsvp, err := client.Reserve(rctx, r.h, ai)
		cancel()
		wait := backoff
		r.mu.Lock()
		if err != nil {
			delete(r.held, ai.ID)
			backoff = min(2*backoff, reserveBackoffMax)
		} else {
			r.held[ai.ID] = circuits
			backoff = reserveBackoffMin
			wait = max(time.Until(rsvp.Expiration)*3/4, reserveBackoffMin)
		}
		r.mu.Unlock()
		if !signalled {
			first <- struct{}{}
			signalled = true
		}
		wait += time.Duration(rand.Int64N(int64(wait) / 10)) // jitter
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// addrs are the circuit addresses of the slots held now.
func (r *reserver) addrs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ai := range r.relays {
		out = append(out, r.held[ai.ID]...)
	}
	return out
}

func (r *reserver) close() {
	r.cancel()
	r.wg.Wait()
}
