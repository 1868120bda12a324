package tracker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"

	"github.com/shoal-cdn/shoal/discovery"
)

// redisEntry is what the Redis store keeps of one peer for sampling, in the
// swarm's entry hash under the peer ID, after the announce script's numbers
// (see storedValue): a small binary value (about 60 bytes for a peer with
// one address), written by the tracker and decoded by every replica, so
// decodeEntry treats it as untrusted input.
//
//	version     1 byte (entryVersion; 2 since the script's numbers share
//	            the value, 1 before, when they had a hash of their own)
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
	entryVersion     = 2
	entryFlagSeed    = 1
	entryFlagTrusted = 2
)

var errBadEntry = errors.New("bad peer entry in Redis")

func (e *redisEntry) encode() []byte { return e.appendTo(make([]byte, 0, 64)) }

// appendTo appends the entry's encoding to b. The flags byte is the
// second: the announce script reads the seed flag there.
func (e *redisEntry) appendTo(b []byte) []byte {
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

// storedValue is a peer's whole value in the swarm's entry hash:
//
//	"<ts> <uploaded> <downloaded> " + entry
//
// the announce's signing time (the replay check's) and transfer counters
// in decimal, which the announce script reads, then the binary entry,
// which the replicas read.
func storedValue(ts, up, dn int64, e *redisEntry) []byte {
	b := make([]byte, 0, 96)
	b = append(strconv.AppendInt(b, ts, 10), ' ')
	b = append(strconv.AppendInt(b, up, 10), ' ')
	b = append(strconv.AppendInt(b, dn, 10), ' ')
	return e.appendTo(b)
}

// parseStored splits a value storedValue wrote into its numbers and the
// entry's bytes (a slice of v), without decoding the entry.
func parseStored(v []byte) (ts, up, dn int64, entry []byte, err error) {
	var n [3]int64
	for i := range n {
		n[i], v, err = parseDecimal(v)
		if err != nil {
			return 0, 0, 0, nil, err
		}
	}
	return n[0], n[1], n[2], v, nil
}

// parseDecimal reads an optional minus sign, decimal digits and one space
// from the start of b, allocation-free, and returns the number and the rest.
func parseDecimal(b []byte) (int64, []byte, error) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var n uint64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if n > (limit-d)/10 {
			return 0, nil, fmt.Errorf("%w: a number outside 64 bits", errBadEntry)
		}
		n = n*10 + d
	}
	if i == 0 || i == len(b) || b[i] != ' ' {
		return 0, nil, fmt.Errorf("%w: want three decimal numbers, each followed by a space, before the entry", errBadEntry)
	}
	if neg {
		return int64(-n), b[i+1:], nil
	}
	return int64(n), b[i+1:], nil
}

// decodeStored decodes the entry of a value storedValue wrote.
func decodeStored(v []byte) (redisEntry, error) {
	_, _, _, e, err := parseStored(v)
	if err != nil {
		return redisEntry{}, err
	}
	return decodeEntry(e)
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
