package tracker

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

// peerStore keeps the swarms: which peers announce which content, from
// where, and each swarm's statistics. The Server calls it concurrently.
// Two implementations: memStore (this process's memory, the default) and
// redisStore (shared by any number of tracker replicas).
type peerStore interface {
	// announce records req, as the handler admitted it, at now: it expires
	// silent peers on the way, refuses replays (errReplay) and new swarms
	// over the caps (errTooMany), and unless the peer stopped returns up to
	// want peers for it.
	announce(ctx context.Context, req *discovery.AnnounceRequest, ad admission, want int, now time.Time) (announceResult, error)
	// expire drops peers silent for longer than the TTL at now (or, for a
	// shared store, the swarms nobody announced to for that long).
	expire(ctx context.Context, now time.Time) ([]leftPeer, error)
	// page returns up to limit swarms after the key after (from the start
	// when nil) in the store's stable order, and the key to pass as after
	// for the next page (nil on the last). A page may hold fewer than limit
	// swarms, even none, and still have a next.
	page(ctx context.Context, after *swarmKey, limit int, now time.Time) ([]SwarmStats, *swarmKey, error)
	// listed reports whether peer announces content in any tenant's swarm.
	listed(ctx context.Context, content core.ContentID, peer string, now time.Time) (bool, error)
	// close releases the store's connections.
	close() error
}

// announceResult is what one announce did.
type announceResult struct {
	peers   []discovery.PeerInfo // the sample for the announcing peer
	joined  bool                 // a new entry
	left    bool                 // a stopped announce removed the peer's entry
	capped  string               // why the peer was answered but not listed
	expired []leftPeer           // peers found silent on the way, for the audit log
	// pooled, if set, holds peers' slice for releasePeers once the answer
	// is written (memStore's samples).
	pooled *[]discovery.PeerInfo
}

// leftPeer is a peer a store dropped for silence.
type leftPeer struct {
	key swarmKey
	id  string
	ip  netip.Addr // the address it last announced from
}

// errStore: the shared store failed (Redis unreachable, a script error).
// The handler answers 503 with a retry-after, so peers come back later or
// try another tracker.
var errStore = errors.New("tracker store unavailable")

var (
	_ peerStore = (*memStore)(nil)
	_ peerStore = (*redisStore)(nil)
)
