package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net"
	"time"
)

// pseudonymBytes is how much of the HMAC-SHA256 a pseudonym keeps: 96 bits,
// enough that two addresses never share one in practice, printed as 16
// base64url characters after a '~' (which no IP address starts with).
const pseudonymBytes = 12

// Pseudonymizer replaces addresses by keyed hashes (HMAC-SHA256, truncated)
// under a key that lives only in memory and is replaced every rotation
// period (periods aligned to multiples of it since the Unix epoch): within
// one period the same address gives the same pseudonym, and once the key is
// gone nobody can map it back. The audit log and the access log share it.
// It is not safe for concurrent use: each log's writing goroutine owns one.
type Pseudonymizer struct {
	rotation time.Duration
	key      []byte
	epoch    int64 // period the key belongs to
	mac      hash.Hash
	sum      [sha256.Size]byte
}

// NewPseudonymizer returns a Pseudonymizer whose key changes every rotation
// (DefaultKeyRotation when rotation ≤ 0).
func NewPseudonymizer(rotation time.Duration) *Pseudonymizer {
	if rotation <= 0 {
		rotation = DefaultKeyRotation
	}
	return &Pseudonymizer{rotation: rotation}
}

// Pseudonym maps an address (host, or host:port, whose port is dropped) to
// its keyed hash under the key of the period of t, the event's time.
func (p *Pseudonymizer) Pseudonym(addr string, t time.Time) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	// Only ever forward: events queued from many goroutines arrive a little
	// out of order around a period boundary, and going back would draw yet
	// another key (the old one is gone) and split one address's pseudonyms.
	if epoch := t.UnixNano() / int64(p.rotation); epoch > p.epoch || p.key == nil {
		p.key = make([]byte, 32)
		rand.Read(p.key) // never fails (crypto/rand panics rather than return an error)
		p.epoch = epoch
		p.mac = hmac.New(sha256.New, p.key)
	}
	p.mac.Reset()
	p.mac.Write([]byte(addr))
	sum := p.mac.Sum(p.sum[:0])
	return "~" + base64.RawURLEncoding.EncodeToString(sum[:pseudonymBytes])
}
