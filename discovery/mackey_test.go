package discovery

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
	"time"
)

// TestMACKeyIsHMAC: MACKey computes HMAC-SHA256 for keys shorter than,
// equal to and longer than a block, and messages that fit its stack buffer
// and that do not.
func TestMACKeyIsHMAC(t *testing.T) {
	for _, kl := range []int{0, 1, 32, 63, 64, 65, 200} {
		key := bytes.Repeat([]byte{byte(kl) + 1}, kl)
		k := NewMACKey(key)
		for _, ml := range []int{0, 1, 55, 64, 447, 448, 449, 1000, 1984, 1985, 5000} {
			msg := bytes.Repeat([]byte{byte(ml)}, ml)
			m := hmac.New(sha256.New, key)
			m.Write(msg)
			if got := k.Sum(msg); !bytes.Equal(got[:], m.Sum(nil)) {
				t.Fatalf("key %d bytes, message %d bytes: MACKey.Sum differs from HMAC-SHA256", kl, ml)
			}
		}
	}
}

// TestMACKeyVerifies: an announce MACed with a ticket verifies with the
// ticket's MACKey (for a short and a long token, whose signing bytes do not
// fit the stack buffer), and no longer once any field changes or under
// another key; the MAC is HMAC-SHA256 of SigningBytes.
func TestMACKeyVerifies(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key := bytes.Repeat([]byte{7}, SessionKeyLen)
	for _, tok := range []string{"", strings.Repeat("t", 2000)} {
		r := AnnounceRequest{Peer: "12D3KooWpeer", Addrs: []string{"/ip4/198.18.0.1/tcp/4001"}, Region: "eu", Token: tok, NumWant: 5}
		r.MACWith(Session{Exp: now.Add(time.Hour).Unix(), Key: key}, now)
		m := hmac.New(sha256.New, key)
		m.Write(r.SigningBytes())
		if !bytes.Equal(r.MAC, m.Sum(nil)) {
			t.Fatal("MACWith is not HMAC-SHA256 of SigningBytes")
		}
		k := NewMACKey(key)
		if err := r.VerifyMACKey(k, now, time.Minute); err != nil {
			t.Fatalf("token of %d bytes: %v", len(tok), err)
		}
		if err := r.VerifyMAC(key, now, time.Minute); err != nil {
			t.Fatalf("token of %d bytes: %v", len(tok), err)
		}
		r2 := r
		r2.NumWant = 6
		if err := r2.VerifyMACKey(k, now, time.Minute); err == nil {
			t.Fatal("a changed field still verifies")
		}
		other := NewMACKey(bytes.Repeat([]byte{8}, SessionKeyLen))
		if err := r.VerifyMACKey(other, now, time.Minute); err == nil {
			t.Fatal("another key verifies")
		}
		if err := r.VerifyMACKey(k, now.Add(2*time.Hour), 3*time.Hour); err == nil {
			t.Fatal("an expired ticket verifies")
		}
	}
}

// TestMACVerifyAllocs: checking a ticket's MAC allocates nothing.
func TestMACVerifyAllocs(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key := bytes.Repeat([]byte{7}, SessionKeyLen)
	r := AnnounceRequest{Peer: "12D3KooWpeer", Addrs: []string{"/ip4/198.18.0.1/tcp/4001"}, Token: strings.Repeat("t", 300)}
	r.MACWith(Session{Exp: now.Add(time.Hour).Unix(), Key: key}, now)
	k := NewMACKey(key)
	if n := testing.AllocsPerRun(100, func() {
		if err := r.VerifyMACKey(k, now, time.Minute); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("VerifyMACKey allocates %v times", n)
	}
}
