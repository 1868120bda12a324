package main

import (
	"flag"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/netx"
)

// natFlags are the connectivity flags of the commands that run a peer (get,
// peer): relays, AutoNAT, hole punching, port mapping, relay-only mode.
type natFlags struct {
	relays                      *string
	autonat, holePunch, portMap *bool
	private, lab                *bool
}

func addNATFlags(fs *flag.FlagSet) natFlags {
	return natFlags{
		relays:    fs.String("relay", "", "comma-separated relay multiaddrs ending in /p2p/ID (printed by shoal relay): the peer reserves a slot on them and is reachable through them while it is not reachable directly"),
		autonat:   fs.Bool("autonat", true, "ask other nodes to dial our addresses back (AutoNAT), and answer their requests, so only addresses confirmed reachable are offered without a relay"),
		holePunch: fs.Bool("hole-punch", true, "upgrade relayed connections to direct ones by hole punching (DCUtR) when both NATs allow it"),
		portMap:   fs.Bool("nat-portmap", false, "ask the home router (UPnP IGD or NAT-PMP) to forward our listen ports"),
		private:   fs.Bool("private", false, "relay-only mode: never reveal this machine's IP address to other peers; listen on no address, connect directly only to the --relay nodes, reach and be reached by peers only through them, announce only relay addresses; no hole punching (needs --relay)"),
		lab:       addLabFlag(fs),
	}
}

// apply checks the flags and fills pc's connectivity.
func (n natFlags) apply(pc *agent.PeerConfig) error {
	if pc.Relays = commaList(*n.relays); len(pc.Relays) > 0 {
		if _, err := netx.ParseRelays(pc.Relays); err != nil {
			return usagef("--relay: %v", err)
		}
	}
	if *n.private && len(pc.Relays) == 0 {
		return usagef("--private: want --relay MULTIADDR: in relay-only mode the relays are the only way in or out")
	}
	pc.AutoNAT, pc.HolePunching, pc.NATPortMap, pc.Private = *n.autonat, *n.holePunch, *n.portMap, *n.private
	if *n.lab {
		netx.UseLabNetwork()
	}
	return nil
}
