package tracker

import (
	"context"
	"errors"
	"fmt"

	"github.com/shoal-cdn/shoal/token"
)

// TokenAuthorizer is the Authorizer of a tracker whose swarms require
// access tokens (package token) signed, or delegated, by a key v trusts.
// The token must cover the announced content and, when bound, the
// announcing peer. With the tracker's manifest lookup (--origin) it must
// also come from the content's own publisher, prefix and "any" scopes work,
// and the content's signed regions are enforced; without it only content-
// and channel-scoped tokens can be checked, and residency and ownership are
// left to the peers' handshake. The swarm's tenant and the peer's region
// come from the token, the grant ends when the token (or its delegation)
// expires, and its Root is the publisher key that signed the token or its
// delegation. A refusal's error says why.
func TokenAuthorizer(v *token.Verifier) Authorizer {
	return func(ctx context.Context, r AuthRequest) (Grant, error) {
		subj := token.Subject{Content: r.Content, Peer: r.Peer}
		var regions []string
		if r.Manifest != nil {
			// The manifest (looked up once per content, then cached: it is
			// immutable) says whose content it is, its name and where it
			// may go. Without it the tracker cannot enforce residency or
			// the publisher's ownership, so a failed lookup refuses.
			mi, err := r.Manifest(ctx)
			if err != nil {
				return Grant{}, fmt.Errorf("cannot check the token against content %s: its manifest: %w", r.Content, err)
			}
			subj.Name, subj.Publisher, regions = mi.Name, mi.Publisher, mi.Policy.Regions
		}
		c, err := v.Check(r.Token, subj)
		if errors.Is(err, token.ErrNeedName) {
			return Grant{}, fmt.Errorf("%w (the tracker needs --origin to look the manifest up)", err)
		}
		if err != nil {
			return Grant{}, err
		}
		exp, root := c.Expiry, c.Issuer
		if d := c.Delegation; d != nil {
			root = d.Publisher
			if d.Expiry.Before(exp) {
				exp = d.Expiry
			}
		}
		return Grant{Tenant: c.Tenant, Region: c.Region, Regions: regions, Expiry: exp, Root: root}, nil
	}
}

// TokenRegrant is the Config.Regrant of a tracker whose Authorizer is
// TokenAuthorizer(v): a grant stands while v still trusts its root key, the
// publisher key the token or its delegation was signed by, so a key
// withdrawn from v's trust set (a trust file re-read, a revocation) stops
// the announces of every ticket granted on it. A grant without a root is
// refused.
func TokenRegrant(v *token.Verifier) func(Grant) error {
	return func(g Grant) error {
		if !v.TrustsRoot(g.Root) {
			return fmt.Errorf("%w: session ticket's grant rests on publisher key %s, no longer trusted", token.ErrUntrusted, g.Root)
		}
		return nil
	}
}

// TokenTenantOf is the TokenTenant of a tracker whose peers hold access
// tokens trusted by v: any valid token of the peer serves, whatever
// content it covers, and names the tenant its telemetry counts under.
func TokenTenantOf(v *token.Verifier) TokenTenant {
	return func(_ context.Context, tok, peer string) (string, error) {
		c, err := v.CheckHolder(tok, peer)
		if err != nil {
			return "", err
		}
		return c.Tenant, nil
	}
}
