package tracker

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

// Authorizer decides whether an announce may join a swarm and learn its
// peers. It is defined here, where it is consumed: the binary adapts the
// token verifier to it. It may block (a manifest fetch), bounded by ctx. An
// error refuses the announce with 403; its text, which should say what is
// wrong with the token, goes back to the peer and into the audit log.
//
// It is called for every announce that carries a token, signed or MACed
// with a session ticket. Its verdict is reused only when Config.Regrant is
// set: then a signed announce's Grant goes into the session ticket, and the
// peer's MACed announces of that content, until the ticket's exp (at most
// Config.SessionTTL, never past Grant.Expiry), are taken on that Grant after
// Regrant accepts it, without calling the Authorizer. An Authorizer whose
// verdict depends on more than the token, peer and content (RemoteIP, state
// that changes) should leave Regrant nil, so that it judges every announce.
type Authorizer func(ctx context.Context, r AuthRequest) (Grant, error)

// AuthRequest is what an Authorizer judges. Every field but Manifest comes
// from a signed announce (or one MACed with a session ticket, issued only
// after a signature verified): the peer proved it holds the key of Peer.
// With Config.Regrant set, the Grant of one signed announce's request also
// stands for the MACed announces that follow it (see Authorizer), whatever
// their RemoteIP.
type AuthRequest struct {
	Token    string
	Content  core.ContentID
	Peer     string     // libp2p peer ID (its signature checked, unless the tracker allows unsigned announces)
	RemoteIP netip.Addr // the client address the tracker observed
	// Manifest returns the name, publisher and policy of Content, fetched
	// from the origin and verified once, then cached. Nil when the tracker
	// has no origin configured.
	Manifest func(ctx context.Context) (ManifestInfo, error)
}

// Grant is what an Authorizer allows.
type Grant struct {
	// Tenant scopes the swarm: peers of one tenant never learn peers of
	// another, even for the same content ID.
	Tenant string
	// Region is where the peer is, from its token. When set it replaces the
	// region the peer claims.
	Region string
	// Regions are where this content may go; empty means anywhere. A peer
	// whose Region is outside them is refused, and only peers inside them
	// are returned.
	Regions []string
	// Expiry is when the grant ends: the token's expiry, or its
	// delegation's when that comes first. A session ticket that carries
	// the grant (session.go) ends no later. Zero: no end known, the
	// ticket lives its usual TTL.
	Expiry time.Time
	// Root is the key the grant's trust rests on: for TokenAuthorizer, the
	// publisher key that signed the token, or that signed its delegation.
	// A ticket that carries the grant carries Root, and Config.Regrant
	// checks it is still trusted at every announce taken on the ticket.
	// Zero: none named.
	Root manifest.PublicKey
}

// ErrOutsideRegions refuses a peer whose granted region is not one the
// content may go to.
var ErrOutsideRegions = errors.New("peer's region is outside the content's regions")

// allows reports whether a peer in region may receive content granted g.
func (g *Grant) allows(region string) bool {
	return len(g.Regions) == 0 || region != "" && slices.Contains(g.Regions, region)
}
