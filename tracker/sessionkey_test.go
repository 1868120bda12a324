package tracker

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSessionKeyDerivation: a ticket key is HMAC-SHA256(K, domain ||
// uvarint(len(peer)) || peer || uint64be(exp)), for a short and a
// long K, so replicas of any build that share K accept each other's tickets.
func TestSessionKeyDerivation(t *testing.T) {
	for _, kl := range []int{MinSessionKeyLen, 100} {
		secret := bytes.Repeat([]byte{3}, kl)
		s := newSessions(secret, DefaultSessionTTL, 0, prometheus.NewRegistry())
		peer, exp := "12D3KooWExamplePeer", int64(1_800_000_123)
		msg := binary.AppendUvarint([]byte(sessionDomain), uint64(len(peer)))
		msg = binary.BigEndian.AppendUint64(append(msg, peer...), uint64(exp))
		m := hmac.New(sha256.New, secret)
		m.Write(msg)
		if got := s.key(peer, exp); !bytes.Equal(got, m.Sum(nil)) {
			t.Fatalf("K of %d bytes: derived key differs from HMAC-SHA256(K, ...)", kl)
		}
		if other := s.key(peer, exp+1); bytes.Equal(other, s.key(peer, exp)) {
			t.Fatal("another expiry derives the same key")
		}
	}
}
