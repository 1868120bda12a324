package live

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cdn/shoal/manifest"
)

// ErrFollowing means a channel is already followed on this Gossip.
var ErrFollowing = errors.New("live: channel already followed")

// Gossip spreads channel updates between peers over GossipSub, one topic
// per channel (TopicName). It rides on the connections the host already has
// (the swarms' peers), so it needs no discovery of its own. Only libp2p
// hosts have it: peers on an in-memory network learn updates from the origin
// alone.
type Gossip struct {
	ps  *pubsub.PubSub
	h   host.Host
	log *slog.Logger

	mu     sync.Mutex                           // guards topics
	topics map[manifest.ChannelID]*pubsub.Topic // joined topics

	wg sync.WaitGroup // every goroutine Follow and Subscribe start (Wait)
}

// Wait blocks until every goroutine the Gossip started has returned: call it
// after the contexts given to Follow and Subscribe end, before releasing
// what their deliveries use.
func (g *Gossip) Wait() { g.wg.Wait() }

// goOwned runs fn on a goroutine Wait waits for.
func (g *Gossip) goOwned(fn func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn()
	}()
}

// GossipParams are the GossipSub parameters of every Gossip, tuned for
// Shoal's topics: a channel's or a swarm's peers, each connected to a few
// (often 8 or fewer) of the others, and small messages (updates, summaries)
// that are worth little once late. Each message crosses every mesh link
// about once, so a peer's share of the traffic is its mesh size times the
// messages: a mesh of 4 (3..5, so grafts beyond 5 are pruned) still reaches
// 30 peers in about three hops, and costs each peer about 5 copies of each
// message where the default 6 (5..12) let a peer with 8 connections mesh
// with all of them. Lazy gossip (IHAVE) goes to 3 non-mesh peers per
// heartbeat, and messages stay 5 heartbeats in the history (3 of them
// advertised), so a peer that missed one fetches it within seconds.
// The heartbeat stays at 1 s: the mesh repairs within a second of a peer
// leaving. The message cap stays at 1 MiB, the largest channel update;
// each topic's validator refuses what is too big for it.
func GossipParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi = 4, 3, 5
	p.Dscore, p.Dout = 2, 1
	p.Dlazy = 3
	p.HistoryLength, p.HistoryGossip = 5, 3
	p.HeartbeatInterval = time.Second
	return p
}

// NewGossip starts GossipSub on h with GossipParams. It stops when ctx
// ends. extra options apply after Shoal's (benchmarks add a tracer).
func NewGossip(ctx context.Context, h host.Host, log *slog.Logger, extra ...pubsub.Option) (*Gossip, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []pubsub.Option{
		pubsub.WithGossipSubParams(GossipParams()),
		// Every message is signed by its author's peer key and checked
		// before any validator runs: a validator's "from" is the author.
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		// An update's ID is its hash, so the same update relayed by many
		// peers (or published by several after polling the origin) is
		// delivered and forwarded once. The raw 32 bytes, not hex: IDs
		// travel in every IHAVE/IWANT, and halving them is a measurable
		// share of the availability gossip's control bytes.
		pubsub.WithMessageIdFn(func(m *pb.Message) string {
			s := sha256.Sum256(m.Data)
			return string(s[:])
		}),
		// Send our own updates to every topic peer, not only the mesh: an
		// update is small and late is useless, and a fresh mesh may still
		// be empty.
		pubsub.WithFloodPublish(true),
	}
	ps, err := pubsub.NewGossipSub(ctx, h, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("live: start gossip: %w", err)
	}
	return &Gossip{ps: ps, h: h, log: log, topics: map[manifest.ChannelID]*pubsub.Topic{}}, nil
}

// Follow joins f's channel topic until ctx ends: updates from peers that
// pass validation are offered to f, and every update f accepts from any
// source is published to the topic. The validator rejects (and so never
// forwards, and scores down the sender of) updates that are malformed,
// badly signed, for another channel or signed by another key, and ignores
// ones older than the one f holds.
func (g *Gossip) Follow(ctx context.Context, f *Follower) error {
	id := f.ID()
	name := TopicName(id)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.topics[id] != nil {
		return fmt.Errorf("%w: %s", ErrFollowing, id)
	}
	err := g.ps.RegisterTopicValidator(name, func(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		return g.validate(f, from, m.Data)
	})
	if err != nil {
		return fmt.Errorf("live: gossip validator for %s: %w", id, err)
	}
	t, err := g.ps.Join(name)
	if err != nil {
		g.ps.UnregisterTopicValidator(name)
		return fmt.Errorf("live: join %s: %w", name, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		t.Close()
		g.ps.UnregisterTopicValidator(name)
		return fmt.Errorf("live: subscribe %s: %w", name, err)
	}
	g.topics[id] = t
	f.OnUpdate(func(_ *manifest.ChannelUpdate, raw []byte) {
		// Publishing validates inline and may block briefly; never hold up
		// the caller of Offer.
		g.goOwned(func() {
			if err := t.Publish(ctx, raw); err != nil && ctx.Err() == nil {
				g.log.Debug("live: gossip publish", "channel", id.Short(), "err", err)
			}
		})
	})
	g.goOwned(func() {
		defer func() {
			sub.Cancel()
			g.mu.Lock()
			delete(g.topics, id)
			g.mu.Unlock()
			t.Close()
			g.ps.UnregisterTopicValidator(name)
		}()
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if m.ReceivedFrom == g.h.ID() {
				continue
			}
			if u, err := f.Offer(m.Data); err == nil {
				g.log.Debug("live: update by gossip", "channel", id.Short(), "seq", u.Seq, "from", m.ReceivedFrom)
			}
		}
	})
	return nil
}

func (g *Gossip) validate(f *Follower, from peer.ID, data []byte) pubsub.ValidationResult {
	u, err := f.Check(data)
	if err != nil {
		g.log.Debug("live: gossip update rejected", "channel", f.ID().Short(), "from", from, "err", err)
		return pubsub.ValidationReject
	}
	cur, raw := f.Latest()
	switch {
	case cur == nil || u.Seq > cur.Seq:
		return pubsub.ValidationAccept
	case u.Seq == cur.Seq && bytes.Equal(data, raw):
		// Our own publish of what we hold, or a copy of it: still worth
		// passing on to peers that lack it.
		return pubsub.ValidationAccept
	}
	// Older, or a second update under the number held (which only the
	// publisher's key could sign, so the relayer is not to blame): drop it
	// without penalty.
	return pubsub.ValidationIgnore
}

// Peers lists the peers this host shares f's topic with.
func (g *Gossip) Peers(id manifest.ChannelID) []peer.ID {
	g.mu.Lock()
	t := g.topics[id]
	g.mu.Unlock()
	if t == nil {
		return nil
	}
	return t.ListPeers()
}

// Verdict is what a topic's check says of a message (see Subscribe).
type Verdict int

// Verdicts.
const (
	Accept Verdict = iota // deliver and pass on
	Ignore                // drop without blame (old news)
	Reject                // drop and score the sender down (forged, malformed)
)

// Subscribe joins topic name until ctx ends, for messages that are not
// channel updates (revocation lists). Every message, ours included, is
// passed through check before it is delivered or forwarded; accepted ones
// from other peers go to deliver. It returns publish, which sends data to
// the topic without blocking its caller.
func (g *Gossip) Subscribe(ctx context.Context, name string, check func(data []byte) Verdict, deliver func(data []byte)) (publish func(data []byte), err error) {
	return g.SubscribeSigned(ctx, name,
		func(_ string, data []byte) Verdict { return check(data) },
		func(_ string, data []byte) { deliver(data) })
}

// SubscribeSigned is Subscribe for messages whose author matters
// (availability summaries): check and deliver also get the author's peer
// ID (its String form), which the message's signature by the author's
// key proves (StrictSign). Messages this host authored are checked but not
// delivered.
func (g *Gossip) SubscribeSigned(ctx context.Context, name string, check func(author string, data []byte) Verdict, deliver func(author string, data []byte)) (publish func(data []byte), err error) {
	err = g.ps.RegisterTopicValidator(name, func(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		switch check(m.GetFrom().String(), m.Data) {
		case Accept:
			return pubsub.ValidationAccept
		case Ignore:
			return pubsub.ValidationIgnore
		}
		g.log.Debug("live: gossip message rejected", "topic", name, "from", from, "author", m.GetFrom())
		return pubsub.ValidationReject
	})
	if err != nil {
		return nil, fmt.Errorf("live: gossip validator for %s: %w", name, err)
	}
	t, err := g.ps.Join(name)
	if err != nil {
		g.ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("live: join %s: %w", name, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		t.Close()
		g.ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("live: subscribe %s: %w", name, err)
	}
	g.goOwned(func() {
		defer func() {
			sub.Cancel()
			t.Close()
			g.ps.UnregisterTopicValidator(name)
		}()
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if author := m.GetFrom(); author != g.h.ID() {
				deliver(author.String(), m.Data)
			}
		}
	})
	return func(data []byte) {
		g.goOwned(func() {
			if err := t.Publish(ctx, data); err != nil && ctx.Err() == nil {
				g.log.Debug("live: gossip publish", "topic", name, "err", err)
			}
		})
	}, nil
}

// TopicPeers is how many peers this host shares topic name with.
func (g *Gossip) TopicPeers(name string) int { return len(g.ps.ListPeers(name)) }
