// Package discovery is how a peer finds other peers of a swarm: the tracker
// announce protocol (its JSON wire types, validation and HTTP client) and the
// Announcer loop that keeps a peer registered — and peer exchange between
// the neighbours of a swarm (PEX). The DHT is in discovery/dht.
//
// It is an engine package: the peer daemon (agent), the one-shot getter and the
// tracker role import it; it imports only core and libraries, never a role.
package discovery
