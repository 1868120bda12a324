package manifest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

func sampleUpdate(t testing.TB, seq uint64, keySeed byte) *ChannelUpdate {
	t.Helper()
	u := &ChannelUpdate{
		Channel:        "news",
		Seq:            seq,
		Created:        time.Date(2026, 11, 23, 6, 0, 0, 123e6, time.UTC),
		TargetDuration: 2,
		MediaSequence:  seq + 10,
		Segments: []ChannelSegment{
			{Seq: seq + 10, Name: "index10.ts", DurationMs: 2000, Size: 1000, Content: core.ContentID(core.SumSHA256([]byte("a")))},
			{Seq: seq + 11, Name: "index11.ts", DurationMs: 1960, Size: 900, Content: core.ContentID(core.SumSHA256([]byte("b")))},
		},
	}
	if err := u.Sign(testKey(keySeed)); err != nil {
		t.Fatal(err)
	}
	return u
}

func encodeUpdate(t testing.TB, u *ChannelUpdate) []byte {
	t.Helper()
	b, err := u.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChannelUpdateRoundTrip(t *testing.T) {
	u := sampleUpdate(t, 7, 1)
	b := encodeUpdate(t, u)
	got, err := DecodeChannelUpdate(b, PublicOf(testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, u) {
		t.Fatalf("decoded %+v, want %+v", got, u)
	}
	if got.ID() != ChannelIDOf(PublicOf(testKey(1)), "news") {
		t.Fatal("channel ID differs")
	}
	if s, ok := got.Segment("index11.ts"); !ok || s.Seq != 18 || s.Duration() != 1960*time.Millisecond {
		t.Fatalf("Segment = %+v, %v", s, ok)
	}
}

func TestChannelIDDependsOnKeyAndName(t *testing.T) {
	a := ChannelIDOf(PublicOf(testKey(1)), "news")
	for _, other := range []ChannelID{ChannelIDOf(PublicOf(testKey(2)), "news"), ChannelIDOf(PublicOf(testKey(1)), "news2")} {
		if a == other {
			t.Fatal("channel IDs collide")
		}
	}
	p, err := ParseChannelID(a.String())
	if err != nil || p != a || len(a.String()) != 43 || strings.ContainsAny(a.String(), "+/=") {
		t.Fatalf("ParseChannelID(%q) = %v, %v", a, p, err)
	}
	if _, err := ParseChannelID("not-an-id"); !errors.Is(err, ErrBadChannelID) {
		t.Fatalf("bad ID: %v", err)
	}
}

func TestChannelUpdateRejected(t *testing.T) {
	trust := PublicOf(testKey(1))
	good := encodeUpdate(t, sampleUpdate(t, 7, 1))
	resign := func(f func(u *ChannelUpdate)) []byte {
		u := sampleUpdate(t, 7, 1)
		f(u)
		u.Signature = nil
		msg, _ := u.signedBytes()
		u.Signature = ed25519.Sign(testKey(1), msg)
		b, _ := json.Marshal(u)
		return b
	}
	tamperedSig := bytes.Clone(good)
	i := bytes.Index(tamperedSig, []byte(`"signature":"`)) + len(`"signature":"`)
	tamperedSig[i] ^= 'A' ^ 'B'
	if tamperedSig[i] == good[i] {
		t.Fatal("tamper did nothing")
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"bad signature", tamperedSig, ErrBadSignature},
		{"tampered body", bytes.Replace(good, []byte(`"size":1000`), []byte(`"size":1001`), 1), ErrBadSignature},
		{"untrusted signer", encodeUpdate(t, sampleUpdate(t, 7, 2)), ErrUntrusted},
		{"whitespace", append(bytes.Clone(good), ' '), ErrNonCanonical},
		{"unknown version", bytes.Replace(good, []byte(`"version":1`), []byte(`"version":9`), 1), ErrVersion},
		{"unknown field", bytes.Replace(good, []byte(`{"version":1,`), []byte(`{"version":1,"x":1,`), 1), ErrMalformed},
		{"oversize", bytes.Repeat([]byte(" "), MaxChannelUpdateSize+1), ErrTooLarge},
		{"gap in window", resign(func(u *ChannelUpdate) { u.Segments[1].Seq++ }), ErrMalformed},
		{"duplicate name", resign(func(u *ChannelUpdate) { u.Segments[1].Name = u.Segments[0].Name }), ErrDuplicate},
		{"path in name", resign(func(u *ChannelUpdate) { u.Segments[1].Name = "../x.ts" }), ErrMalformed},
		{"playlist name", resign(func(u *ChannelUpdate) { u.Segments[1].Name = "index.m3u8" }), ErrMalformed},
		{"no duration", resign(func(u *ChannelUpdate) { u.Segments[1].DurationMs = 0 }), ErrMalformed},
		{"too long", resign(func(u *ChannelUpdate) { u.Segments[1].DurationMs = 3001 }), ErrMalformed},
		{"empty channel", resign(func(u *ChannelUpdate) { u.Channel = "" }), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeChannelUpdate(tc.b, trust); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNewer(t *testing.T) {
	old, cur, next := sampleUpdate(t, 1, 1), sampleUpdate(t, 2, 1), sampleUpdate(t, 3, 1)
	for _, tc := range []struct {
		name       string
		prev, next *ChannelUpdate
		want       bool
	}{
		{"first", nil, cur, true},
		{"newer", cur, next, true},
		{"same", cur, cur, false},
		{"older", cur, old, false},
		{"nil next", cur, nil, false},
	} {
		if got := Newer(tc.prev, tc.next); got != tc.want {
			t.Errorf("%s: Newer = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSignRejectsInvalidUpdate(t *testing.T) {
	u := &ChannelUpdate{Channel: "x", TargetDuration: 0}
	if err := u.Sign(testKey(1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Sign of an invalid update: %v", err)
	}
}

func FuzzDecodeChannelUpdate(f *testing.F) {
	good := encodeUpdate(f, sampleUpdate(f, 7, 1))
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add(bytes.Replace(good, []byte("index10.ts"), []byte("../x.ts"), 1))
	trust := PublicOf(testKey(1))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeChannelUpdate(b, trust)
		if err != nil {
			return
		}
		enc, err := u.Encode()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("encode(decode(b)) != b: %v", err)
		}
		u2, err := DecodeChannelUpdate(enc, trust)
		if err != nil || !reflect.DeepEqual(u, u2) {
			t.Fatalf("decode → encode → decode changed the update: %v", err)
		}
	})
}
