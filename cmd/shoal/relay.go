package main

import (
	"context"
	"flag"
	"io"
	"strings"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery/dht"
	"github.com/shoal-cdn/shoal/netx"
	"github.com/shoal-cdn/shoal/relay"
)

func init() {
	register("relay", "run a public relay for peers behind NATs: circuit relay v2, AutoNAT and a DHT bootstrap node", runRelay)
}

func runRelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("relay", "[--listen MULTIADDRS] [--state-dir DIR] [limits]", stderr)
	listen := fs.String("listen", "/ip4/0.0.0.0/tcp/4002,/ip4/0.0.0.0/udp/4002/quic-v1", "comma-separated libp2p listen multiaddrs (TCP and QUIC); use public addresses")
	stateDir := fs.String("state-dir", "", "directory holding the relay's identity key (peer.key), so the multiaddrs peers were given stay valid across restarts; empty: a new identity each start")
	ttl := fs.Duration("reservation-ttl", netx.DefaultRelayReservationTTL, "how long a peer's relay slot lasts before the peer must renew it")
	maxRes := fs.Int("max-reservations", netx.DefaultRelayMaxReservations, "most peers holding a relay slot at once")
	maxResIP := fs.Int("max-reservations-per-ip", 8, "most relay slots held from one IP address")
	maxCircuits := fs.Int("max-circuits", netx.DefaultRelayMaxCircuits, "most relayed connections to or from one peer at once")
	circuitBytes := fs.String("circuit-bytes", "64MiB", "bytes one relayed connection carries in each direction before the relay resets it")
	circuitDur := fs.Duration("circuit-duration", netx.DefaultRelayCircuitDuration, "longest a relayed connection lasts before the relay resets it")
	metrics := fs.String("metrics", "127.0.0.1:7272", "listen address of the Prometheus /metrics endpoint (reservations, circuits, bytes relayed); empty: none")
	bootstrap := fs.String("bootstrap", "", "other relays' multiaddrs (ending in /p2p/PEERID), comma-separated, whose DHT this relay joins; empty: this relay starts a DHT of its own")
	lab := addLabFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return usagef("want no arguments, got %q", fs.Args())
	}
	cb, err := core.ParseSize(*circuitBytes)
	if err != nil || cb <= 0 {
		return usagef("--circuit-bytes %q: want a positive size such as 64MiB", *circuitBytes)
	}
	for name, v := range map[string]int{"max-reservations": *maxRes, "max-reservations-per-ip": *maxResIP, "max-circuits": *maxCircuits} {
		if v <= 0 {
			return usagef("--%s %d: want a positive number", name, v)
		}
	}
	if *ttl <= 0 || *circuitDur <= 0 {
		return usagef("--reservation-ttl %v, --circuit-duration %v: want positive durations such as 1h and 10m", *ttl, *circuitDur)
	}
	logger, err := newLogger(fs, stderr)
	if err != nil {
		return err
	}
	boot := commaList(*bootstrap)
	if _, err := dht.ParseBootstrap(boot); err != nil {
		return usagef("--bootstrap: %v", err)
	}
	if *lab {
		netx.UseLabNetwork()
	}
	return relay.Run(ctx, relay.Config{
		Host: netx.RelayConfig{
			ListenAddrs: strings.Split(*listen, ","), StateDir: *stateDir,
			ReservationTTL: *ttl, MaxReservations: *maxRes, MaxReservationsPerIP: *maxResIP,
			MaxCircuits: *maxCircuits, CircuitBytes: cb, CircuitDuration: *circuitDur,
		},
		DHT:     dht.Config{Bootstrap: boot},
		Out:     stdout,
		Metrics: *metrics,
		Logger:  logger,
	})
}

// addLabFlag is --lab-network, of the commands that run libp2p hosts.
func addLabFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("lab-network", false, "treat the benchmark range 198.18.0.0/15 as internet addresses and trust an external address after one observer: for Shoal's NAT lab only, whose hosts live in that range")
}
