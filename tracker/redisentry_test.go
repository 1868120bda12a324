package tracker

import (
	"bytes"
	"errors"
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
