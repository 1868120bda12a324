package main

import (
	"flag"
	"time"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/netx"
)

// p2pFlags are the receivers' flags about their P2P side: identity, DSCP
// marking and availability gossip.
type p2pFlags struct {
	identity, dscp *string
	gossip         *time.Duration
}

func addP2PFlags(fs *flag.FlagSet) p2pFlags {
	return p2pFlags{
		identity: fs.String("identity", string(netx.IdentityFixed), "peer identity: fixed (one key in the cache directory, kept for good) or daily (a new key each UTC day, derived from a secret seed kept 0600 in the cache directory, so days cannot be linked without it; a running peer switches at its next start)"),
		dscp:     fs.String("dscp", netx.DefaultDSCP.String(), "DSCP mark on P2P sockets (TCP and QUIC), so networks can deprioritise Shoal's traffic: cs1 (lower effort), le (RFC 8622), cs0..cs7, af11..af43, ef, a number 0..63, or off; origin requests are never marked"),
		gossip:   fs.Duration("gossip-interval", agent.DefaultGossipInterval, "how often each swarm's peers republish their availability summary by gossip when nothing changed (±20%, longer in swarms of over 30 peers); 0: the default; negative: no availability gossip"),
	}
}

// apply checks the flags into pc.
func (f p2pFlags) apply(pc *agent.PeerConfig) error {
	var err error
	if pc.Identity, err = netx.ParseIdentity(*f.identity); err != nil {
		return usagef("--identity: %v", err)
	}
	if pc.DSCP, err = netx.ParseDSCP(*f.dscp); err != nil {
		return usagef("--dscp: %v", err)
	}
	pc.GossipInterval = *f.gossip
	return nil
}
