package token

import "fmt"

// CheckHolder verifies tok for a use that concerns no one content (a
// peer's telemetry): signed by a trusted key (or delegated by one, the
// delegation unexpired), valid now, and bound to peer when it is bound to a
// peer at all. Its scope is not checked, so any token the tenant issued to
// the peer serves. The claims say the tenant.
func (v *Verifier) CheckHolder(tok, peer string) (*Claims, error) {
	if tok == "" {
		return nil, ErrMissing
	}
	t, err := Decode(tok)
	if err != nil {
		return nil, err
	}
	if err := v.checkSigned(t); err != nil {
		return nil, err
	}
	c := &t.Claims
	now := v.clock.Now()
	if now.Add(v.skew).Before(c.NotBefore) {
		return nil, fmt.Errorf("%w: not valid before %s (now %s)", ErrNotYetValid, stamp(c.NotBefore), stamp(now))
	}
	if !now.Add(-v.skew).Before(c.Expiry) {
		return nil, fmt.Errorf("%w at %s (now %s)", ErrExpired, stamp(c.Expiry), stamp(now))
	}
	if c.Peer != "" && c.Peer != peer {
		return nil, fmt.Errorf("%w: bound to %s, presented by %s", ErrPeer, short(c.Peer), short(peer))
	}
	return c, nil
}
