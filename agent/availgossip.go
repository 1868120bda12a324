package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/live"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm"
	"github.com/shoal-cdn/shoal/wire"
)

// Availability gossip: each swarm has a GossipSub topic (AvailTopic) on
// which its peers publish compact summaries of what they hold (wire.Summary).
// A peer learns from them which peers it is not connected to hold the
// chunks none of its connected peers has, and dials those, within its
// connection cap. One topic per content (not per group of contents): a
// summary only means something against one manifest, a peer subscribes to
// exactly the swarms it is in, and a topic's mesh is made of that swarm's
// connections, which already exist.

// AvailTopic is the gossip topic of content id's availability summaries.
func AvailTopic(id core.ContentID) string { return "/shoal/avail/1/" + id.String() }

// Availability gossip defaults.
const (
	// DefaultGossipInterval is the anti-entropy period: every peer
	// republishes its summary this often (±20 %) even if nothing changed,
	// so a peer that joined late, or lost a message, learns within one
	// period.
	DefaultGossipInterval = swarm.DefaultGossipInterval
	// gossipMinGap is the least time between two summaries of one peer
	// (a change worth telling waits for it).
	gossipMinGap = 2 * time.Second
	// gossipCheck is how often a peer looks for a change worth telling and
	// for remote holders to dial.
	gossipCheck = 500 * time.Millisecond
	// gossipDials bounds the remote holders dialled per check.
	gossipDials = 2
	// gossipDialTimeout bounds one dial of a remote holder.
	gossipDialTimeout = 10 * time.Second
)

// availConfig configures runAvailGossip.
type availConfig struct {
	Interval time.Duration // anti-entropy period; 0: DefaultGossipInterval
	// Addrs returns the addresses to put in our summaries.
	Addrs func() []string
	// Dial connects to a remote holder; nil: summaries are only collected.
	Dial func(ctx context.Context, id netx.PeerID, addrs []string) error
}

// availCheck is the topic's validator: a summary must decode strictly,
// be for sess's content, carry dialable addresses and be newer than its
// author's last one; a valid one is recorded at once (so the validator's
// verdict and the recorded state never disagree).
func availCheck(sess *swarm.Session, own []string, author string, data []byte) live.Verdict {
	if len(data) > wire.MaxSummary {
		return live.Reject
	}
	sum, err := wire.UnmarshalSummary(data)
	if err != nil {
		return live.Reject
	}
	if sess.CheckSummary(sum) != nil {
		return live.Reject
	}
	addrs, err := netx.UnpackAddrs(sum.Addrs)
	if err != nil {
		return live.Reject
	}
	if _, err := netx.ParseAddrs(addrs); err != nil {
		return live.Reject
	}
	// Recorded as text, as Node.Connect takes them, and only those this
	// peer could dial: an author must not make the swarm dial hosts of its
	// choosing (a LAN host, a port on each peer's own machine).
	sum.Addrs = netx.Reachable(own, addrs)
	switch err := sess.OfferSummary(netx.PeerID(author), sum); {
	case errors.Is(err, swarm.ErrStaleSummary):
		return live.Ignore // old news, perhaps replayed: not passed on
	case err != nil:
		return live.Reject
	}
	return live.Accept
}

// runAvailGossip publishes sess's summary on its topic and records its
// peers' summaries until ctx ends: at start (once it holds a chunk), after each change worth
// telling (a chunk gained after none, completion, or an eighth of the
// content since the last summary) or each new topic neighbour, at most
// once per gossipMinGap, and every Interval (±20 %) regardless, or less
// often in a large swarm (swarm.GossipInterval). It dials
// holders of chunks no connected peer has (sess.RemoteDials).
func runAvailGossip(ctx context.Context, g *live.Gossip, sess *swarm.Session, cfg availConfig) error {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultGossipInterval
	}
	topic := AvailTopic(sess.Content().ID)
	publish, err := g.SubscribeSigned(ctx, topic,
		func(author string, data []byte) live.Verdict {
			return availCheck(sess, addrsOf(cfg.Addrs), author, data)
		},
		func(string, []byte) {}) // recorded by the validator
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var (
		seq       uint64
		last      time.Time
		lastHeld  = -1
		lastPeers int
		next      time.Time // next anti-entropy round
		n         = sess.Content().Len()
	)
	jitter := func() time.Duration {
		iv := swarm.GossipInterval(cfg.Interval, sess.KnownPeers())
		return iv*8/10 + rand.N(iv*4/10+1)
	}
	t := time.NewTicker(gossipCheck)
	defer t.Stop()
	for {
		now := time.Now()
		sum := sess.Summary(0, netx.PackAddrs(addrsOf(cfg.Addrs)))
		held := 0
		for _, r := range sum.Ranges {
			held += r.To - r.From
		}
		peers := g.TopicPeers(topic)
		worth := lastHeld < 0 ||
			(held > 0 && lastHeld == 0) ||
			(held == n && lastHeld != n) ||
			held-lastHeld >= max(1, n/8) ||
			peers > lastPeers
		// A peer that holds nothing has nothing to tell (once it has
		// said so, if it held something before).
		quiet := held == 0 && lastHeld <= 0
		if !quiet && ((worth && now.Sub(last) >= gossipMinGap) || !now.Before(next)) {
			seq = max(seq+1, uint64(now.UnixMilli()))
			sum.Seq = seq
			if b, err := wire.MarshalSummary(sum); err == nil {
				publish(b)
			}
			last, lastHeld, lastPeers, next = now, held, peers, now.Add(jitter())
		}
		lastPeers = min(lastPeers, peers) // a neighbour that left and came back is new again
		if cfg.Dial != nil {
			for _, rp := range sess.RemoteDials(gossipDials) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					dctx, cancel := context.WithTimeout(ctx, gossipDialTimeout)
					defer cancel()
					cfg.Dial(dctx, rp.ID, rp.Addrs)
				}()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func addrsOf(f func() []string) []string {
	if f == nil {
		return nil
	}
	return f()
}

// startAvailGossip runs the availability gossip of sess until ctx ends,
// when the host is libp2p, the gossip is not turned off and sess is not a
// live segment's.
func (p *Peer) startAvailGossip(ctx context.Context, sess *swarm.Session) {
	if p.cfg.GossipInterval < 0 {
		return
	}
	if _, seg := p.segChan.Load(sess.Content().ID); seg {
		// A live segment's swarm lives for seconds: a topic per segment
		// would churn subscriptions on every peer each segment, and the
		// channel's own gossip already tells who follows it.
		return
	}
	g := p.gossip()
	if g == nil {
		return
	}
	p.goOwned(func() {
		err := runAvailGossip(ctx, g, sess, availConfig{
			Interval: p.cfg.GossipInterval,
			Addrs:    p.host.Addrs,
			Dial: func(ctx context.Context, id netx.PeerID, addrs []string) error {
				return p.node.Connect(ctx, sess, id, addrs)
			},
		})
		if err != nil && ctx.Err() == nil {
			p.log.Warn("availability gossip unavailable", "content", sess.Content().ID.Short(), "err", err)
		}
	})
}
