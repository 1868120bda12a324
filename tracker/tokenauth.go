package tracker

import (
	"context"
	"errors"
	"fmt"

	"github.com/shoal-cdn/shoal/token"
)

// TokenAuthorizer is the Authorizer of a tracker whose swarms require
// access tokens (package token) signed, or delegated, by a key v trusts.
// The token must name the announced content (or a name prefix of it, which
// needs the tracker's manifest lookup, --origin) and, when bound, the
// announcing peer. The swarm's tenant and the peer's region come from the
// token; the regions the content may go to come from its signed manifest
// policy, when the tracker can look it up. A refusal's error says why.
func TokenAuthorizer(v *token.Verifier) Authorizer {
	return func(ctx context.Context, r AuthRequest) (Grant, error) {
		subj := token.Subject{Content: r.Content, Peer: r.Peer}
		var info *ManifestInfo
		lookup := func() error {
			if info != nil {
				return nil
			}
			if r.Manifest == nil {
				return errors.New("the tracker has no origin to look the manifest up (--origin)")
			}
			mi, err := r.Manifest(ctx)
			if err != nil {
				return err
			}
			info = &mi
			return nil
		}
		c, err := v.Check(r.Token, subj)
		if errors.Is(err, token.ErrNeedName) {
			if lerr := lookup(); lerr != nil {
				return Grant{}, fmt.Errorf("%w (manifest of %s: %v)", err, r.Content, lerr)
			}
			subj.Name, subj.Publisher = info.Name, info.Publisher
			c, err = v.Check(r.Token, subj)
		}
		if err != nil {
			return Grant{}, err
		}
		g := Grant{Tenant: c.Tenant, Region: c.Region}
		if r.Manifest != nil && lookup() == nil {
			g.Regions = info.Policy.Regions
		}
		return g, nil
	}
}
