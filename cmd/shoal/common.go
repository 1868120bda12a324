package main

import (
	"crypto/ed25519"
	"flag"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/discovery/dht"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/swarm"
)

// publisherFlags are the flags of the commands that sign and write an
// origin layout (publish, live).
type publisherFlags struct {
	key, out, chunk *string
}

func addPublisherFlags(fs *flag.FlagSet) publisherFlags {
	return publisherFlags{
		key:   fs.String("key", "", "publisher private key file (from shoal keygen)"),
		out:   fs.String("out", "", "origin layout directory to write into (created if missing)"),
		chunk: fs.String("chunk-size", "256KiB", "chunk size: a power of two from 16KiB to 16MiB"),
	}
}

// load reads the key file and checks the chunk size.
func (p publisherFlags) load() (ed25519.PrivateKey, int64, error) {
	cs, err := core.ParseSize(*p.chunk)
	if err != nil {
		return nil, 0, usagef("--chunk-size: %v", err)
	}
	if err := core.CheckChunkSize(cs); err != nil {
		return nil, 0, usagef("--chunk-size: %v", err)
	}
	priv, err := manifest.ReadKeyFile(*p.key)
	if err != nil {
		return nil, 0, err
	}
	return priv, cs, nil
}

// receiverFlags are the flags of the commands that receive content and may
// join swarms (get, peer).
type receiverFlags struct {
	cache, origin, tracker, listen, upload, region, assist *string
	trust                                                  *keyList
	trustFile                                              *string
	token, tokenFile                                       *string
	openSwarm                                              *bool
	banFor                                                 *time.Duration
	bootstrap                                              *string
	dhtServer                                              *bool
	pexInterval                                            *time.Duration
	nat                                                    natFlags
	p2p                                                    p2pFlags
	tel                                                    peerTelemetryFlags
	policy                                                 policyFlags
}

func addReceiverFlags(fs *flag.FlagSet, cacheHelp, trackerHelp, listenDefault string) receiverFlags {
	trust := &keyList{}
	fs.Var(trust, "trust", "publisher public keys (printed by shoal keygen) manifests may be signed by: comma-separated, and the flag may be repeated; trust the old and the new key while rotating")
	return receiverFlags{
		trust:       trust,
		trustFile:   fs.String("trust-file", "", "file of trusted publisher keys, one per line (# comments), added to --trust; a running peer re-reads it when it changes"),
		cache:       fs.String("cache", agent.DefaultCacheDir(), cacheHelp),
		origin:      fs.String("origin", "", "origin or CDN URL of the layout root (the source of truth and fallback)"),
		tracker:     fs.String("tracker", "", trackerHelp),
		listen:      fs.String("listen", listenDefault, "comma-separated libp2p listen multiaddrs (TCP and QUIC)"),
		upload:      fs.String("upload-limit", "0", "upload cap to peers, e.g. 20Mbit or 5MB/s (0: unlimited)"),
		region:      fs.String("region", "", "region label; the tracker prefers peers of the same region"),
		token:       fs.String("token", "", "access token (printed by shoal token issue) presented to peers and the tracker; with one, peers must present a valid token of the same tenant too"),
		tokenFile:   fs.String("token-file", "", "file holding the access token; read again when it changes, so a refreshed token needs no restart (instead of --token)"),
		openSwarm:   fs.Bool("open-swarm", false, "serve peers that present no token even when this peer has one"),
		banFor:      fs.Duration("ban-for", swarm.DefaultBanFor, "how long a peer that sent a chunk failing verification stays banned, from every swarm and across restarts (kept in the cache directory)"),
		bootstrap:   fs.String("bootstrap", "", "DHT bootstrap nodes: comma-separated multiaddrs ending in /p2p/PEERID (a shoal relay, or a peer run with --dht-server); with them the peer finds swarms through Shoal's DHT too, and without any tracker"),
		dhtServer:   fs.Bool("dht-server", false, "run the DHT node in server mode (answer queries, store provider records: what a bootstrap node does); default: server only once publicly reachable, client otherwise"),
		pexInterval: fs.Duration("pex-interval", discovery.DefaultPEXInterval, "peer exchange: least time between two messages to or from one swarm neighbour (each names up to 16 peers we are connected to); 0: off"),
		nat:         addNATFlags(fs),
		p2p:         addP2PFlags(fs),
		tel:         addPeerTelemetryFlags(fs),
		policy:      addPolicyFlags(fs),
		assist:      fs.String("origin-assist", "off", "origin egress traded for speed: off (the swarm costs the origin about one copy), a fraction such as 0.3 (this peer may also take up to 30% of each content from the origin, rarest chunks first, so N peers cost at most 1+0.3·N copies) or max (no cap)"),
	}
}

// peerConfig checks the flags and fills what they set of a PeerConfig.
func (r receiverFlags) peerConfig() (agent.PeerConfig, error) {
	if len(*r.trust) == 0 && *r.trustFile == "" {
		return agent.PeerConfig{}, usagef("want --trust PUBKEY[,PUBKEY…] or --trust-file FILE: the publisher keys to trust")
	}
	up, err := core.ParseRate(*r.upload)
	if err != nil {
		return agent.PeerConfig{}, usagef("--upload-limit: %v", err)
	}
	assist, err := agent.ParseOriginAssist(*r.assist)
	if err != nil {
		return agent.PeerConfig{}, usagef("--origin-assist: %v", err)
	}
	if *r.banFor <= 0 {
		return agent.PeerConfig{}, usagef("--ban-for: want a positive duration such as 24h, got %v", *r.banFor)
	}
	var ts *agent.TokenSource
	if *r.token != "" || *r.tokenFile != "" {
		if ts, err = agent.NewTokenSource(*r.token, *r.tokenFile); err != nil {
			return agent.PeerConfig{}, usagef("--token/--token-file: %v", err)
		}
	}
	if *r.pexInterval < 0 {
		return agent.PeerConfig{}, usagef("--pex-interval %v: want a positive duration such as 30s, or 0 for off", *r.pexInterval)
	}
	pex := *r.pexInterval
	if pex == 0 {
		pex = -1 // off
	}
	boot := commaList(*r.bootstrap)
	if _, err := dht.ParseBootstrap(boot); err != nil {
		return agent.PeerConfig{}, usagef("--bootstrap: %v", err)
	}
	pc := agent.PeerConfig{
		DHT: dht.Config{Bootstrap: boot, Server: *r.dhtServer}, PEXInterval: pex,
		CacheDir: *r.cache, Tracker: *r.tracker, Origin: *r.origin, Trust: manifest.NewKeySet(*r.trust...), TrustFile: *r.trustFile, BanFor: *r.banFor,
		Listen: strings.Split(*r.listen, ","), UploadLimit: up, Region: *r.region, OriginAssist: assist,
		Token: ts, OpenSwarm: *r.openSwarm,
	}
	if err := r.nat.apply(&pc); err != nil {
		return agent.PeerConfig{}, err
	}
	if err := r.tel.apply(&pc); err != nil {
		return agent.PeerConfig{}, err
	}
	if err := r.policy.apply(&pc); err != nil {
		return agent.PeerConfig{}, err
	}
	return pc, r.p2p.apply(&pc)
}

// keyList is a repeatable flag of comma-separated publisher keys.
type keyList []manifest.PublicKey

func (k *keyList) String() string {
	if k == nil {
		return ""
	}
	parts := make([]string, len(*k))
	for i, key := range *k {
		parts[i] = key.String()
	}
	return strings.Join(parts, ",")
}

// Set adds the keys of one comma-separated value.
func (k *keyList) Set(s string) error {
	keys, err := manifest.ParseKeyList(s)
	if err != nil {
		return err
	}
	*k = append(*k, keys...)
	return nil
}
