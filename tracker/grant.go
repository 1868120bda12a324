package tracker

import (
	"errors"
	"fmt"
	"hash/maphash"
	"sync/atomic"

	"github.com/shoal-cdn/shoal/discovery"
)

// A session ticket issued after a token was accepted carries the Grant, so
// the peer's later announces need neither the token nor its check
// (session.go). Its encoding, opaque to the peer:
//
//	version  1 byte: grantVersion
//	root     32 bytes: the key the grant's trust rests on (zero: none named)
//	tenant   uint8 length | bytes
//	region   uint8 length | bytes
//	regions  uint8 count (0..maxGrantRegions) | each: uint8 length | bytes
//
// Nothing follows, and the whole is at most discovery.MaxGrantLen bytes.
// The root has one width and every length prefix is the only way to write
// its length, so one Grant has one encoding. Expiry is not encoded: the ticket's exp,
// bound by its key, is never later than it.
const (
	grantVersion    = 1
	maxGrantStr     = 255 // bytes of the tenant and of each region
	maxGrantRegions = 255
)

// errGrant refuses a grant that does not decode. The tracker MACed every
// grant it accepts, so this is a grant of another version (a replica of
// another build) or a bug: the peer is told to sign again.
var errGrant = errors.New("session ticket's grant does not decode")

// encodable reports whether g fits the grant encoding; a Grant that does
// not (a custom Authorizer's tenant of over 255 bytes, regions that add up
// to more than discovery.MaxGrantLen, which the peer would not keep) gets a
// ticket without a grant, and its announces keep sending the token.
func (g *Grant) encodable() bool {
	if len(g.Tenant) > maxGrantStr || len(g.Region) > maxGrantStr || len(g.Regions) > maxGrantRegions {
		return false
	}
	n := 1 + len(g.Root) + 1 + len(g.Tenant) + 1 + len(g.Region) + 1
	for _, r := range g.Regions {
		if len(r) > maxGrantStr {
			return false
		}
		n += 1 + len(r)
	}
	return n <= discovery.MaxGrantLen
}

// appendGrant appends g's encoding to b; g must be encodable.
func appendGrant(b []byte, g *Grant) []byte {
	b = append(b, grantVersion)
	b = append(b, g.Root[:]...)
	b = append(append(b, byte(len(g.Tenant))), g.Tenant...)
	b = append(append(b, byte(len(g.Region))), g.Region...)
	b = append(b, byte(len(g.Regions)))
	for _, r := range g.Regions {
		b = append(append(b, byte(len(r))), r...)
	}
	return b
}

// decodeGrant decodes a grant strictly: the version, the root whole, every
// length within what is left, nothing after the last region, at most
// discovery.MaxGrantLen bytes. Expiry is left zero.
func decodeGrant(b []byte) (Grant, error) {
	var g Grant
	if len(b) == 0 || b[0] != grantVersion {
		return g, fmt.Errorf("%w: want version %d", errGrant, grantVersion)
	}
	if len(b) > discovery.MaxGrantLen {
		return g, fmt.Errorf("%w: %d bytes, at most %d", errGrant, len(b), discovery.MaxGrantLen)
	}
	if len(b) < 1+len(g.Root) {
		return g, fmt.Errorf("%w: root cut short at %d bytes", errGrant, len(b))
	}
	i := 1 + copy(g.Root[:], b[1:])
	str := func(what string) (string, error) {
		if i >= len(b) || int(b[i]) > len(b)-i-1 {
			return "", fmt.Errorf("%w: %s cut short at byte %d of %d", errGrant, what, i, len(b))
		}
		n := int(b[i])
		s := string(b[i+1 : i+1+n])
		i += 1 + n
		return s, nil
	}
	var err error
	if g.Tenant, err = str("tenant"); err != nil {
		return Grant{}, err
	}
	if g.Region, err = str("region"); err != nil {
		return Grant{}, err
	}
	if i >= len(b) {
		return Grant{}, fmt.Errorf("%w: no region count", errGrant)
	}
	n := int(b[i])
	i++
	if n > 0 {
		if n > len(b)-i { // each region takes at least its length byte
			return Grant{}, fmt.Errorf("%w: %d regions in %d bytes", errGrant, n, len(b)-i)
		}
		g.Regions = make([]string, n)
		for j := range g.Regions {
			if g.Regions[j], err = str("region list"); err != nil {
				return Grant{}, err
			}
		}
	}
	if i != len(b) {
		return Grant{}, fmt.Errorf("%w: %d bytes after the last field", errGrant, len(b)-i)
	}
	return g, nil
}

// grantCache remembers the last grants decoded, by their encoding, so an
// announce MACed with a ticket that carries one allocates nothing to read
// it back: a tracker's grants are few (tenants × regions), its announces
// many. Direct-mapped, grantCacheSlots entries, lock-free; a collision
// replaces the entry. Only grants whose MAC verified are ever looked up,
// and a hit needs the whole encoding to match. The Grants it returns share
// their Regions: read only.
type grantCache struct {
	seed  maphash.Seed
	slots [grantCacheSlots]atomic.Pointer[grantEntry]
}

const grantCacheSlots = 256

type grantEntry struct {
	enc string
	g   Grant
}

func newGrantCache() *grantCache { return &grantCache{seed: maphash.MakeSeed()} }

// decode is decodeGrant, remembered.
func (c *grantCache) decode(b []byte) (Grant, error) {
	slot := &c.slots[maphash.Bytes(c.seed, b)%grantCacheSlots]
	if e := slot.Load(); e != nil && e.enc == string(b) { // no copy: compared in place
		return e.g, nil
	}
	g, err := decodeGrant(b)
	if err != nil {
		return Grant{}, err
	}
	slot.Store(&grantEntry{enc: string(b), g: g})
	return g, nil
}
