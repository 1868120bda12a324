package agent

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/discovery/dht"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm"
)

// Source says how a peer learned of another peer of a swarm.
type Source string

// The discovery sources.
const (
	SourceTracker Source = "tracker"
	SourceDHT     Source = "dht"
	SourcePEX     Source = "pex"
)

var sources = []Source{SourceTracker, SourceDHT, SourcePEX}

// sourceCounts counts, for one source, the peers it named and those of
// them that joined a swarm through it (dialled and handshaken by us).
type sourceCounts struct {
	learned, connected atomic.Int64
}

// SourceStatus is one discovery source's counts on /api/status.
type SourceStatus struct {
	Learned   int64 `json:"learned"`   // peers it named (again each time it names one)
	Connected int64 `json:"connected"` // of those, connections it brought (dialled and handshaken)
}

// DiscoveryStatus is how the peer finds others: per source, and its DHT node.
type DiscoveryStatus struct {
	Sources map[Source]SourceStatus `json:"sources"`
	DHT     *dht.Stats              `json:"dht,omitempty"` // nil without a DHT
}

// dhtEnabled reports whether c asks for a DHT node.
func dhtEnabled(c dht.Config) bool { return len(c.Bootstrap) > 0 || c.Server }

// startDiscovery starts what the peer has beyond the tracker: a DHT node
// (when configured, on a libp2p host) and peer exchange (unless off).
func (p *Peer) startDiscovery(ctx context.Context) error {
	p.found = map[Source]*sourceCounts{}
	for _, s := range sources {
		p.found[s] = &sourceCounts{}
	}
	if dhtEnabled(p.cfg.DHT) {
		h, ok := netx.Libp2p(p.host)
		if !ok {
			p.log.Warn("DHT needs a libp2p host; this one has none: discovery by tracker and peer exchange only")
		} else {
			c := p.cfg.DHT
			c.Logger = p.log
			d, err := dht.New(ctx, h, c)
			if err != nil {
				return err
			}
			p.dht = d
		}
	}
	if p.cfg.PEXInterval >= 0 {
		p.pex = discovery.NewPEX(discovery.PEXConfig{Host: p.host, Interval: p.cfg.PEXInterval, Logger: p.log})
	}
	return nil
}

// stopDiscovery stops the DHT node and peer exchange; the sessions using
// them have ended.
func (p *Peer) stopDiscovery() {
	if p.pex != nil {
		p.pex.Close()
	}
	if p.dht != nil {
		if err := p.dht.Close(); err != nil {
			p.log.Debug("DHT close", "err", err)
		}
	}
}

// discover runs the session's discovery beyond the tracker until sctx
// ends: it provides the content on the DHT and looks its providers up, and
// exchanges peers with its neighbours. The goroutines are the peer's (wg).
func (p *Peer) discover(sctx context.Context, sess *swarm.Session, id core.ContentID) {
	if p.dht != nil {
		p.dht.Provide(sctx, id)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			want := func() bool { return len(sess.Peers()) < dht.DefaultWantPeers }
			p.dht.FindPeers(sctx, id, want, func(pi discovery.PeerInfo) {
				p.goOwned(func() { p.connectFound(sctx, sess, SourceDHT, pi) })
			})
		}()
	}
	if p.pex != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pex.Run(sctx, id, pexSwarm{p.node, sess}, func(pi discovery.PeerInfo, err error) {
				c := p.found[SourcePEX]
				c.learned.Add(1)
				if err == nil {
					c.connected.Add(1)
				} else {
					p.log.Debug("PEX peer refused", "peer", pi.Peer, "err", err)
				}
			})
		}()
	}
}

// connectFound dials a peer that src named into sess, counting it, once
// the session's dial hold (a playback's start-up) is over.
func (p *Peer) connectFound(ctx context.Context, sess *swarm.Session, src Source, pi discovery.PeerInfo) {
	c := p.found[src]
	c.learned.Add(1)
	id := netx.PeerID(pi.Peer)
	if j := p.joinedOf(sess.Content().ID); j != nil && j.sess == sess && !j.dialsReleased(ctx) {
		return // left during a playback's start-up
	}
	if slices.Contains(sess.Peers(), id) {
		return
	}
	if err := p.node.Connect(ctx, sess, id, pi.Addrs); err != nil {
		p.log.Debug("connect", "peer", pi.Peer, "source", src, "err", err)
		return
	}
	if slices.Contains(sess.Peers(), id) {
		c.connected.Add(1)
	}
}

// discoveryStatus reports the sources' counts and the DHT node.
func (p *Peer) discoveryStatus() DiscoveryStatus {
	st := DiscoveryStatus{Sources: map[Source]SourceStatus{}}
	for _, s := range sources {
		c := p.found[s]
		st.Sources[s] = SourceStatus{Learned: c.learned.Load(), Connected: c.connected.Load()}
	}
	if p.dht != nil {
		ds := p.dht.Stats()
		st.DHT = &ds
	}
	return st
}

// pexSwarm is a session as peer exchange sees it.
type pexSwarm struct {
	node *swarm.Node
	sess *swarm.Session
}

func (s pexSwarm) Neighbours() []netx.PeerID { return s.sess.Peers() }

func (s pexSwarm) Connect(ctx context.Context, pi discovery.PeerInfo) error {
	return s.node.Connect(ctx, s.sess, netx.PeerID(pi.Peer), pi.Addrs)
}
