package tracker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/shoal-cdn/shoal/discovery"
)

// redisEntry is what the Redis store keeps of one peer for sampling, in the
// swarm's entry hash under the peer ID: a small binary value (about 60
// bytes for a peer with one address), written by the tracker and decoded by
// every replica, so decodeEntry treats it as untrusted input.
//
//	version     1 byte (entryVersion)
//	flags       1 byte: 1 = seed, 2 = region granted by a token
//	last seen   uvarint, Unix milliseconds on the tracker's clock
//	region      uvarint length + bytes (≤ discovery.MaxRegionLen)
//	observed IP 1 byte length (0, 4 or 16) + bytes
//	addresses   public, private, loopback: each a uvarint count
//	            (≤ discovery.MaxAddrs) of uvarint length + bytes
//	            (≤ discovery.MaxAddrLen)
type redisEntry struct {
	seed, trusted bool
	lastSeen      int64
	region        string
	addrs         peerAddrs
}

const (
	entryVersion     = 1
	entryFlagSeed    = 1
	entryFlagTrusted = 2
)

var errBadEntry = errors.New("bad peer entry in Redis")

func (e *redisEntry) encode() []byte {
	b := make([]byte, 0, 64)
	var flags byte
	if e.seed {
		flags |= entryFlagSeed
	}
	if e.trusted {
		flags |= entryFlagTrusted
	}
	b = append(b, entryVersion, flags)
	b = binary.AppendUvarint(b, uint64(e.lastSeen))
	b = appendString(b, e.region)
	switch ip := e.addrs.observed; {
	case ip.Is4():
		a := ip.As4()
		b = append(append(b, 4), a[:]...)
	case ip.Is6():
		a := ip.As16()
		b = append(append(b, 16), a[:]...)
	default:
		b = append(b, 0)
	}
	for _, l := range [][]string{e.addrs.public, e.addrs.private, e.addrs.loopback} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, s := range l {
			b = appendString(b, s)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decodeEntry parses an entry encode wrote, within the protocol's limits.
func decodeEntry(b []byte) (redisEntry, error) {
	e, _, err := decodeEntryHead(b, false)
	return e, err
}

// blanks stands in for the addresses of an entry decoded head only.
var blanks [discovery.MaxAddrs]string

// decodeEntryHead is decodeEntry that, with headOnly, allocates nothing:
// the region is left empty and returned as a slice of b instead, and each
// address list holds as many empty strings as the entry has addresses,
// enough for peerAddrs.anyVisible. Sampling looks at a hundred entries per
// announce and hands out a few dozen; only those are decoded whole.
func decodeEntryHead(b []byte, headOnly bool) (redisEntry, []byte, error) {
	d := entryDecoder{b: b}
	var e redisEntry
	if v := d.byte("version"); d.err == nil && v != entryVersion {
		return e, nil, fmt.Errorf("%w: version %d, want %d", errBadEntry, v, entryVersion)
	}
	flags := d.byte("flags")
	if d.err == nil && flags&^(entryFlagSeed|entryFlagTrusted) != 0 {
		d.fail("flags: unknown bits %#x", flags)
	}
	e.seed, e.trusted = flags&entryFlagSeed != 0, flags&entryFlagTrusted != 0
	ls := d.uvarint("last seen", 1<<62)
	e.lastSeen = int64(ls)
	region := d.take("region", int(d.uvarint("region length", discovery.MaxRegionLen)))
	if !headOnly {
		e.region = string(region)
	}
	switch n := d.byte("observed IP length"); {
	case d.err != nil:
	case n == 0:
	case n == 4 || n == 16:
		raw := d.take("observed IP", int(n))
		if d.err == nil {
			ip, _ := netip.AddrFromSlice(raw)
			if n == 16 && ip.Is4In6() {
				d.fail("observed IP: IPv4 written as IPv6")
			}
			e.addrs.observed = ip
		}
	default:
		d.fail("observed IP: length %d", n)
	}
	for _, l := range []*[]string{&e.addrs.public, &e.addrs.private, &e.addrs.loopback} {
		n := int(d.uvarint("address count", discovery.MaxAddrs))
		for i := 0; i < n && d.err == nil; i++ {
			if headOnly {
				d.take("address", int(d.uvarint("address length", discovery.MaxAddrLen)))
				continue
			}
			*l = append(*l, d.string("address", discovery.MaxAddrLen))
		}
		if headOnly && n > 0 {
			*l = blanks[:n:n]
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return e, region, d.err
}

// entryDecoder reads an entry, keeping the first error.
type entryDecoder struct {
	b   []byte
	err error
}

func (d *entryDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errBadEntry, fmt.Sprintf(format, args...))
	}
}

func (d *entryDecoder) take(what string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail("%s: %d bytes, %d left", what, n, len(d.b))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *entryDecoder) byte(what string) byte {
	if v := d.take(what, 1); v != nil {
		return v[0]
	}
	return 0
}

func (d *entryDecoder) uvarint(what string, limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("%s: bad varint", what)
		return 0
	}
	if v > limit {
		d.fail("%s: %d, at most %d", what, v, limit)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *entryDecoder) string(what string, limit int) string {
	n := d.uvarint(what+" length", uint64(limit))
	return string(d.take(what, int(n)))
}
