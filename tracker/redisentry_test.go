package tracker

import (
	"bytes"
	"errors"
	"math"
	"net/netip"
	"reflect"
	"testing"
)

func TestRedisEntryRoundTrip(t *testing.T) {
	for _, e := range []redisEntry{
		{},
		{seed: true, trusted: true, lastSeen: 1767225600000, region: "eu-west",
			addrs: peerAddrs{observed: netip.MustParseAddr("198.18.0.7"), public: []string{"/ip4/198.18.0.7/tcp/4001"}}},
		{lastSeen: 1, addrs: peerAddrs{observed: netip.MustParseAddr("2001:db8::1"),
			private: []string{"/ip4/10.0.0.2/tcp/1", "/ip4/10.0.0.2/udp/1/quic-v1"}, loopback: []string{"/ip4/127.0.0.1/tcp/9"}}},
	} {
		got, err := decodeEntry(e.encode())
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip: got %+v, want %+v", got, e)
		}
	}
}

func TestRedisEntryRefusesBadInput(t *testing.T) {
	good := (&redisEntry{region: "r", addrs: peerAddrs{observed: netip.MustParseAddr("198.18.0.7"), public: []string{"/ip4/198.18.0.7/tcp/1"}}}).encode()
	for name, b := range map[string][]byte{
		"empty":       nil,
		"version":     append([]byte{9}, good[1:]...),
		"flags":       append([]byte{entryVersion, 0x80}, good[2:]...),
		"truncated":   good[:len(good)-1],
		"trailing":    append(bytes.Clone(good), 0),
		"long region": append([]byte{entryVersion, 0, 1, 0xff, 0x01}, bytes.Repeat([]byte{'a'}, 255)...),
	} {
		if _, err := decodeEntry(b); !errors.Is(err, errBadEntry) {
			t.Errorf("%s: got %v, want errBadEntry", name, err)
		}
	}
}

// FuzzDecodeEntry: any bytes decode or fail cleanly, what decodes
// decodes alike head only, and encodes back to an entry that decodes the
// same.
func FuzzDecodeEntry(f *testing.F) {
	f.Add((&redisEntry{seed: true, lastSeen: 5, region: "r", addrs: peerAddrs{observed: netip.MustParseAddr("198.18.0.7"), public: []string{"/ip4/198.18.0.7/tcp/1"}}}).encode())
	f.Add([]byte{entryVersion, 0, 0, 0, 16, 32, 1, 13, 184, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		h, region, err := decodeEntryHead(b, true)
		if err != nil || string(region) != e.region || h.lastSeen != e.lastSeen || h.seed != e.seed ||
			h.addrs.observed != e.addrs.observed || len(h.addrs.public) != len(e.addrs.public) ||
			len(h.addrs.private) != len(e.addrs.private) || len(h.addrs.loopback) != len(e.addrs.loopback) {
			t.Fatalf("head-only decode %+v (region %q, %v) disagrees with the whole %+v", h, region, err, e)
		}
		e2, err := decodeEntry(e.encode())
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("unstable: %+v then %+v", e, e2)
		}
	})
}

// TestRedisStoredValueRoundTrip: the numbers the announce script reads
// come back whole at the ends of the int64 range, and the entry after
// them decodes; a value without its three numbers is refused.
func TestRedisStoredValueRoundTrip(t *testing.T) {
	e := redisEntry{seed: true, lastSeen: 7, region: "r", addrs: peerAddrs{observed: netip.MustParseAddr("198.18.0.7"), public: []string{"/ip4/198.18.0.7/tcp/1"}}}
	for _, n := range [][3]int64{{0, 0, 0}, {1767225600000, 5, 9}, {math.MaxInt64, math.MinInt64, -1}} {
		v := storedValue(n[0], n[1], n[2], &e)
		ts, up, dn, raw, err := parseStored(v)
		if err != nil || ts != n[0] || up != n[1] || dn != n[2] {
			t.Fatalf("%q: got %d %d %d, %v; want %v", v, ts, up, dn, err, n)
		}
		if !bytes.Equal(raw, e.encode()) {
			t.Fatalf("%q: entry bytes %q, want %q", v, raw, e.encode())
		}
		if raw[1]&entryFlagSeed == 0 {
			t.Fatalf("the seed flag is not in the entry's second byte, where the script reads it")
		}
	}
	for _, v := range []string{"", "1 2 ", "1 2 3", "a 2 3 \x02\x00", "1 2 99999999999999999999 \x02", "-9223372036854775809 0 0 \x02"} {
		if _, err := decodeStored([]byte(v)); !errors.Is(err, errBadEntry) {
			t.Errorf("%q: got %v, want errBadEntry", v, err)
		}
	}
}

// FuzzDecodeStored: any bytes split into numbers and an entry or fail
// cleanly, and what decodes writes back to a value that decodes the same.
func FuzzDecodeStored(f *testing.F) {
	f.Add(storedValue(1767225600000, 3, 4, &redisEntry{seed: true, lastSeen: 5, region: "r", addrs: peerAddrs{observed: netip.MustParseAddr("198.18.0.7"), public: []string{"/ip4/198.18.0.7/tcp/1"}}}))
	f.Add([]byte("-1 0 -0 \x02\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, up, dn, raw, err := parseStored(b)
		if err != nil {
			return
		}
		e, err := decodeEntry(raw)
		if err != nil {
			return
		}
		ts2, up2, dn2, raw2, err := parseStored(storedValue(ts, up, dn, &e))
		if err != nil || ts2 != ts || up2 != up || dn2 != dn {
			t.Fatalf("numbers %d %d %d came back %d %d %d (%v)", ts, up, dn, ts2, up2, dn2, err)
		}
		e2, err := decodeEntry(raw2)
		if err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("entry %+v came back %+v (%v)", e, e2, err)
		}
	})
}
