package token

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

// DefaultSkew is how far apart a verifier's clock and an issuer's may be:
// a token is accepted this long before its not-before and after its expiry.
const DefaultSkew = 30 * time.Second

// Subject is what a token is presented for. Zero fields are unknown.
type Subject struct {
	Content   core.ContentID     // the content being accessed
	Channel   manifest.ChannelID // the live channel it belongs to, if any
	Name      string             // the manifest's name (prefix scopes)
	Publisher manifest.PublicKey // the manifest's signer (prefix scopes)
	Peer      string             // the libp2p peer ID presenting the token
	Tenant    string             // when set, the tenant the token must name
	Regions   []string           // when set, the token's region must be one of them
}

// Verifier checks tokens against a set of trusted publisher keys. It is
// safe for concurrent use.
type Verifier struct {
	trust manifest.Trust
	clock core.Clock
	skew  time.Duration
	// verified remembers tokens whose signatures verified, by their
	// printed form (nil: no cache). See WithCache.
	verified *tokenCache
}

// NewVerifier trusts tokens signed by any of keys (or delegated by one of
// them), judged by clock with DefaultSkew.
func NewVerifier(keys []manifest.PublicKey, clock core.Clock) *Verifier {
	return NewTrustVerifier(manifest.NewKeySet(keys...), clock)
}

// NewTrustVerifier trusts tokens signed (or delegated) by a key trust
// trusts at the time of each check: a peer's key set, as it rotates and
// revokes keys.
func NewTrustVerifier(trust manifest.Trust, clock core.Clock) *Verifier {
	if clock == nil {
		clock = core.RealClock{}
	}
	return &Verifier{trust: trust, clock: clock, skew: DefaultSkew}
}

// WithSkew returns a copy of v allowing skew instead of DefaultSkew.
func (v *Verifier) WithSkew(skew time.Duration) *Verifier {
	c := *v
	c.skew = max(skew, 0)
	return &c
}

// WithCache returns a copy of v that remembers up to n tokens whose
// signatures verified (least recently used forgotten), so a token presented
// again, as a peer does with every announce, costs a hash and the claims
// checks instead of a decode and one or two Ed25519 verifications. Only the
// signatures' verdict is remembered: a signature over the same bytes
// verifies forever, while everything that can change (whether the issuer
// is still trusted, expiry, the delegation's expiry, scope, peer, region)
// is checked at every call. n <= 0 returns v unchanged.
func (v *Verifier) WithCache(n int) *Verifier {
	if n <= 0 {
		return v
	}
	c := *v
	c.verified = newTokenCache(n)
	return &c
}

// TrustsRoot reports whether v trusts k now as a root: a key whose tokens,
// and whose delegations, it accepts. It is the trust part of Check, for a
// caller that kept a verdict (a tracker's session ticket) and wants to know
// whether its root key is still trusted.
func (v *Verifier) TrustsRoot(k manifest.PublicKey) bool { return v.trust.Trusts(k) }

// Now is the verifier's clock.
func (v *Verifier) Now() time.Time { return v.clock.Now() }

// Skew is the clock skew v allows.
func (v *Verifier) Skew() time.Duration { return v.skew }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Check decodes tok and verifies it for subj: signed by a trusted key (or by
// a key a trusted publisher delegated to, within the delegation's limits),
// valid now, for subj.Tenant, bound to subj.Peer if bound, in scope for what
// subj names, and from one of subj.Regions when they are set. The error
// wraps one of the package's sentinels and says what is wrong.
func (v *Verifier) Check(tok string, subj Subject) (*Claims, error) {
	if tok == "" {
		return nil, ErrMissing
	}
	var key uint64
	if v.verified != nil {
		key = v.verified.hash(tok)
		if t, ok := v.verified.get(tok, key); ok {
			if err := v.checkTrusted(t); err != nil {
				return nil, err
			}
			if err := v.checkClaims(&t.Claims, subj); err != nil {
				return nil, err
			}
			c := t.Claims // the cached token is shared: hand out a copy
			return &c, nil
		}
	}
	t, err := Decode(tok)
	if err != nil {
		return nil, err
	}
	if err := v.checkSigned(t); err != nil {
		return nil, err
	}
	if v.verified != nil {
		v.verified.add(tok, key, t)
	}
	if err := v.checkClaims(&t.Claims, subj); err != nil {
		return nil, err
	}
	c := t.Claims
	return &c, nil
}

// checkSigned checks that t's signer is trusted (checkTrusted) and that its
// signatures, and its delegation's, verify.
func (v *Verifier) checkSigned(t *Token) error {
	if err := v.checkTrusted(t); err != nil {
		return err
	}
	if d := t.Delegation; d != nil && !d.Verify() {
		return fmt.Errorf("%w: delegation signature does not verify under %s", ErrDelegation, d.Publisher)
	}
	body := t.raw[:len(t.raw)-ed25519.SignatureSize]
	if !ed25519.Verify(t.Issuer[:], append([]byte(TokenDomain), body...), t.Signature) {
		return fmt.Errorf("%w under %s", ErrBadSignature, t.Issuer)
	}
	return nil
}

// checkTrusted is what checkSigned checks besides the signatures, all of
// which can change between two checks of one token: whether its root key
// is trusted, and whether its delegation has expired.
func (v *Verifier) checkTrusted(t *Token) error {
	root := t.Issuer
	if d := t.Delegation; d != nil {
		root = d.Publisher
		if !v.trust.Trusts(root) {
			return fmt.Errorf("%w: delegation signed by %s, which is not a trusted publisher key", ErrUntrusted, root)
		}
		if now := v.clock.Now(); !now.Add(-v.skew).Before(d.Expiry) {
			return fmt.Errorf("%w: delegation to %s expired at %s", ErrDelegation, d.Delegate, stamp(d.Expiry))
		}
	} else if !v.trust.Trusts(root) {
		return fmt.Errorf("%w: %s", ErrUntrusted, root)
	}
	return nil
}

func (v *Verifier) checkClaims(c *Claims, subj Subject) error {
	now := v.clock.Now()
	if now.Add(v.skew).Before(c.NotBefore) {
		return fmt.Errorf("%w: not valid before %s (now %s)", ErrNotYetValid, stamp(c.NotBefore), stamp(now))
	}
	if !now.Add(-v.skew).Before(c.Expiry) {
		return fmt.Errorf("%w at %s (now %s)", ErrExpired, stamp(c.Expiry), stamp(now))
	}
	if subj.Tenant != "" && c.Tenant != subj.Tenant {
		return fmt.Errorf("%w: token tenant %q, this swarm's tenant %q", ErrTenant, c.Tenant, subj.Tenant)
	}
	if c.Peer != "" && c.Peer != subj.Peer {
		return fmt.Errorf("%w: bound to %s, presented by %s", ErrPeer, short(c.Peer), short(subj.Peer))
	}
	root := c.Issuer
	if c.Delegation != nil {
		root = c.Delegation.Publisher
		if err := inScope(c.Delegation.Scope, root, subj); err != nil {
			return fmt.Errorf("%w (the delegation's limit)", err)
		}
	}
	if err := inScope(c.Scope, root, subj); err != nil {
		return err
	}
	if len(subj.Regions) > 0 && !slices.Contains(subj.Regions, c.Region) {
		if c.Region == "" {
			return fmt.Errorf("%w: token names no region; the content is restricted to %s", ErrRegion, strings.Join(subj.Regions, ","))
		}
		return fmt.Errorf("%w: region %q is not one of %s", ErrRegion, c.Region, strings.Join(subj.Regions, ","))
	}
	return nil
}

func short(p string) string {
	if p == "" {
		return "an unknown peer"
	}
	if len(p) > 16 {
		return p[:6] + "…" + p[len(p)-6:]
	}
	return p
}

// inScope checks that s, granted by publisher root, covers subj. Whatever
// the scope, a content signed by another publisher is out of it: a trusted
// publisher grants access to its own contents only.
func inScope(s Scope, root manifest.PublicKey, subj Subject) error {
	if subj.Publisher != (manifest.PublicKey{}) && subj.Publisher != root {
		return fmt.Errorf("%w: token covers what %s signs, this content is signed by %s", ErrScope, root, subj.Publisher)
	}
	switch s.Kind {
	case ScopeContent:
		if subj.Content != s.Content {
			return fmt.Errorf("%w: token is for content %s, not %s", ErrScope, s.Content.Short(), subj.Content.Short())
		}
	case ScopeChannel:
		if subj.Channel != s.Channel {
			return fmt.Errorf("%w: token is for channel %s, not this content", ErrScope, s.Channel.Short())
		}
	case ScopePrefix:
		if subj.Name == "" || subj.Publisher == (manifest.PublicKey{}) {
			return ErrNeedName
		}
		if !strings.HasPrefix(subj.Name, s.Prefix) {
			return fmt.Errorf("%w: name %q does not start with %q", ErrScope, subj.Name, s.Prefix)
		}
	case ScopeAny:
		if subj.Publisher == (manifest.PublicKey{}) {
			return ErrNeedName // whose content it is decides
		}
	default:
		return fmt.Errorf("%w: unknown scope kind %d", ErrScope, uint8(s.Kind))
	}
	return nil
}
