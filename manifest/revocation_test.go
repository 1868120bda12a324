package manifest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

func sampleRevocation(t testing.TB, signer byte, seq uint64) *Revocation {
	t.Helper()
	r := &Revocation{
		Seq:      seq,
		Issued:   time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		Keys:     []PublicKey{PublicOf(testKey(3)), PublicOf(testKey(2)), PublicOf(testKey(3))},
		Contents: []core.ContentID{core.ContentID(core.SumSHA256([]byte("x"))), core.ContentID(core.SumSHA256([]byte("a")))},
		Channels: []ChannelID{ChannelIDOf(PublicOf(testKey(1)), "news")},
	}
	if err := r.Sign(testKey(signer)); err != nil {
		t.Fatal(err)
	}
	return r
}

func encodeRevocation(t testing.TB, r *Revocation) []byte {
	t.Helper()
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRevocationRoundTrip(t *testing.T) {
	r := sampleRevocation(t, 1, 5)
	if len(r.Keys) != 2 {
		t.Fatalf("Sign kept %d keys, want the 2 distinct ones", len(r.Keys))
	}
	b := encodeRevocation(t, r)
	got, err := DecodeRevocation(b, NewKeySet(PublicOf(testKey(9)), PublicOf(testKey(1))))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("decoded %+v, want %+v", got, r)
	}
	if !got.RevokesKey(PublicOf(testKey(2))) || got.RevokesKey(PublicOf(testKey(1))) {
		t.Fatal("RevokesKey disagrees with the list")
	}
	if !got.RevokesContent(core.ContentID(core.SumSHA256([]byte("x")))) || got.RevokesContent(core.ContentID{}) {
		t.Fatal("RevokesContent disagrees with the list")
	}
	if !got.RevokesChannel(ChannelIDOf(PublicOf(testKey(1)), "news")) {
		t.Fatal("RevokesChannel disagrees with the list")
	}
}

func TestRevocationNewer(t *testing.T) {
	a, b := sampleRevocation(t, 1, 1), sampleRevocation(t, 1, 2)
	if !a.Newer(nil) || !b.Newer(a) || a.Newer(b) || b.Newer(b) {
		t.Fatal("Newer must hold only for a strictly higher sequence number")
	}
}

func TestDecodeRevocationRejects(t *testing.T) {
	good := encodeRevocation(t, sampleRevocation(t, 1, 5))
	trust := PublicOf(testKey(1))
	revoked := NewKeySet(trust)
	revoked.Revoke(trust)
	big := &Revocation{Seq: 1, Issued: time.Unix(1, 0).UTC()}
	for i := range MaxRevocationEntries + 1 {
		big.Contents = append(big.Contents, core.ContentID(core.SumSHA256([]byte{byte(i), byte(i >> 8)})))
	}
	r := sampleRevocation(t, 1, 5)
	r.Keys[0], r.Keys[1] = r.Keys[1], r.Keys[0]
	msg, err := r.signedBytes()
	if err != nil {
		t.Fatal(err)
	}
	r.Signature = ed25519.Sign(testKey(1), msg)
	unsorted := encodeRevocation(t, r)
	for _, tc := range []struct {
		name  string
		b     []byte
		trust Trust
		want  error
	}{
		{"untrusted signer", good, PublicOf(testKey(9)), ErrUntrusted},
		{"revoked signer", good, revoked, ErrRevoked},
		{"tampered", bytes.Replace(good, []byte(`"seq":5`), []byte(`"seq":6`), 1), trust, ErrBadSignature},
		{"whitespace", append([]byte(" "), good...), trust, ErrNonCanonical},
		{"unsorted keys", unsorted, trust, ErrNonCanonical},
		{"unknown field", bytes.Replace(good, []byte(`"seq"`), []byte(`"x":1,"seq"`), 1), trust, ErrMalformed},
		{"version", bytes.Replace(good, []byte(`"version":1`), []byte(`"version":2`), 1), trust, ErrVersion},
		{"too large", make([]byte, MaxRevocationSize+1), trust, ErrTooLarge},
		{"seq zero", bytes.Replace(good, []byte(`"seq":5`), []byte(`"seq":0`), 1), trust, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeRevocation(tc.b, tc.trust); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if err := big.Sign(testKey(1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Sign of %d entries: %v, want ErrTooLarge", MaxRevocationEntries+1, err)
	}
}

func TestKeySet(t *testing.T) {
	k1, k2, k3 := PublicOf(testKey(1)), PublicOf(testKey(2)), PublicOf(testKey(3))
	s := NewKeySet(k1, k2)
	if !s.Trusts(k1) || !s.Trusts(k2) || s.Trusts(k3) {
		t.Fatal("a new set must trust exactly its members")
	}
	if !s.Replace([]PublicKey{k2, k3}) || s.Trusts(k1) || !s.Trusts(k3) {
		t.Fatal("Replace must swap the members")
	}
	if s.Replace([]PublicKey{k3, k2}) {
		t.Fatal("Replace with the same members reported a change")
	}
	if !s.Revoke(k2) || s.Revoke(k2) || s.Trusts(k2) || !s.Revoked(k2) {
		t.Fatal("a revoked key must stop being trusted, once")
	}
	s.Replace([]PublicKey{k2})
	if s.Trusts(k2) {
		t.Fatal("a revoked key came back by Replace")
	}
	if got := s.String(); got != "" {
		t.Fatalf("String of a set whose only member is revoked: %q", got)
	}
	var none *KeySet
	if none.Trusts(k1) {
		t.Fatal("a nil set trusts nothing")
	}
	b := encodeRevocation(t, sampleRevocation(t, 1, 1))
	if _, err := DecodeRevocation(b, s); !errors.Is(err, ErrUntrusted) || errors.Is(err, ErrRevoked) {
		t.Fatalf("a list by a non-member: %v, want ErrUntrusted without ErrRevoked", err)
	}
}

func TestParseTrustFile(t *testing.T) {
	k1, k2 := PublicOf(testKey(1)), PublicOf(testKey(2))
	got, err := ParseTrustFile([]byte("# publisher keys\n" + k1.String() + "  # current\n\n  " + k2.String() + "\n"))
	if err != nil || !reflect.DeepEqual(got, []PublicKey{k1, k2}) {
		t.Fatalf("got %v, %v", got, err)
	}
	_, err = ParseTrustFile([]byte(k1.String() + "\nnot-a-key\n"))
	if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a bad line: %v, want ErrBadKey naming line 2", err)
	}
	got, err = ParseKeyList(k1.String() + ", " + k2.String() + ",")
	if err != nil || !reflect.DeepEqual(got, []PublicKey{k1, k2}) {
		t.Fatalf("ParseKeyList: %v, %v", got, err)
	}
}

func FuzzDecodeRevocation(f *testing.F) {
	good := encodeRevocation(f, sampleRevocation(f, 1, 7))
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add(bytes.Replace(good, []byte(`"seq":7`), []byte(`"seq":-1`), 1))
	trust := PublicOf(testKey(1))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRevocation(b, trust)
		if err != nil {
			return
		}
		enc, err := r.Encode()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("encode(decode(b)) != b: %v", err)
		}
		r2, err := DecodeRevocation(enc, trust)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("decode → encode → decode changed the list: %v", err)
		}
	})
}
