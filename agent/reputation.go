package agent

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/swarm"
)

// Bounds of the offence reporter.
const (
	reportQueue   = 16               // offences waiting to be sent; more are dropped
	reportSent    = 1024             // (offender, content) pairs remembered as reported
	reportTimeout = 10 * time.Second // one report's round trip
)

// reporter tells the tracker about chunks that failed verification, once
// per offender and content, from one goroutine owned by the Peer. A full
// queue drops the offence: the local ban has happened anyway, and other
// receivers of the same liar will report it too.
type reporter struct {
	p    *Peer
	key  crypto.PrivKey
	q    chan swarm.Offence
	sent map[string]bool // owned by run: offender + content already reported
}

// newTrust opens the peer's ban list and reputation, shared by all its
// swarms, and the reporter feeding the tracker (with a tracker and the
// host's own key, i.e. not with a Host passed in by a test).
func (p *Peer) newTrust(ctx context.Context) (*swarm.Trust, error) {
	cfg := swarm.TrustConfig{
		BanFile: filepath.Join(p.cfg.CacheDir, swarm.BanFileName),
		BanFor:  p.cfg.BanFor,
		Logger:  p.log,
		Audit:   p.cfg.Audit,
	}
	if p.tracker != nil && p.cfg.Host == nil {
		key, err := netx.LoadOrCreateKey(filepath.Join(p.cfg.CacheDir, netx.KeyFileName))
		if err != nil {
			return nil, err
		}
		r := &reporter{p: p, key: key, q: make(chan swarm.Offence, reportQueue), sent: map[string]bool{}}
		cfg.Report = r.enqueue
		p.goOwned(func() { r.run(ctx) })
	}
	return swarm.NewTrust(cfg), nil
}

func (r *reporter) enqueue(o swarm.Offence) {
	select {
	case r.q <- o:
	default:
		r.p.log.Debug("offence report dropped: queue full", "peer", o.Peer.Short())
	}
}

func (r *reporter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-r.q:
			r.send(ctx, o)
		}
	}
}

func (r *reporter) send(ctx context.Context, o swarm.Offence) {
	k := string(o.Peer) + "/" + o.Content.String()
	if r.sent[k] {
		return
	}
	if len(r.sent) >= reportSent {
		clear(r.sent)
	}
	r.sent[k] = true
	rep := discovery.Report{
		Reporter: string(r.p.host.ID()), Offender: string(o.Peer), Content: o.Content,
		Chunk: o.Chunk, Hash: hex.EncodeToString(o.Hash[:]),
	}
	if err := discovery.SignReport(&rep, r.key, time.Now()); err != nil {
		r.p.log.Warn("offence report", "peer", o.Peer.Short(), "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	if err := r.p.tracker.Report(ctx, rep); err != nil {
		r.p.log.Warn("offence report", "peer", o.Peer.Short(), "err", err)
		return
	}
	r.p.log.Info("offence reported to the tracker", "peer", o.Peer.Short(), "content", o.Content.Short(), "chunk", o.Chunk)
}
