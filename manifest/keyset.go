package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// ErrRevoked means a publisher key was named by a revocation list: nothing
// it signed is trusted any more. It comes wrapped together with
// ErrUntrusted, so callers that only know ErrUntrusted still refuse.
var ErrRevoked = errors.New("publisher key revoked")

// MaxTrustedKeys bounds a trust set (flags and trust file together).
const MaxTrustedKeys = 1024

// Trust says which publisher keys a receiver accepts signatures from. A
// single PublicKey trusts itself; a *KeySet trusts its members.
type Trust interface {
	Trusts(PublicKey) bool
}

// Trusts reports whether k is o: a lone key trusts only itself.
func (k PublicKey) Trusts(o PublicKey) bool { return k == o }

var (
	_ Trust = PublicKey{}
	_ Trust = (*KeySet)(nil)
)

// KeySet is the set of publisher keys a receiver trusts, safe for concurrent
// use. A publisher rotates keys by signing with a new one while receivers
// trust both, then dropping (or revoking) the old one. Replace swaps the
// members (a trust file re-read); Revoke marks a key revoked for the life of
// the set, and a revoked key is not trusted even while it is a member.
type KeySet struct {
	mu      sync.RWMutex
	keys    map[PublicKey]bool // guarded by mu: the members
	revoked map[PublicKey]bool // guarded by mu: keys revocation lists named
}

// NewKeySet returns a set of keys.
func NewKeySet(keys ...PublicKey) *KeySet {
	s := &KeySet{keys: map[PublicKey]bool{}, revoked: map[PublicKey]bool{}}
	for _, k := range keys {
		s.keys[k] = true
	}
	return s
}

// Trusts reports whether k is a member and not revoked. A nil set trusts
// nothing.
func (s *KeySet) Trusts(k PublicKey) bool {
	if s == nil {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys[k] && !s.revoked[k]
}

// Revoked reports whether k was revoked.
func (s *KeySet) Revoked(k PublicKey) bool {
	if s == nil {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.revoked[k]
}

// Replace makes keys the members (revocations stay). It reports whether the
// members changed.
func (s *KeySet) Replace(keys []PublicKey) bool {
	next := make(map[PublicKey]bool, len(keys))
	for _, k := range keys {
		next[k] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	same := len(next) == len(s.keys)
	for k := range next {
		same = same && s.keys[k]
	}
	s.keys = next
	return !same
}

// Revoke marks k revoked. It reports whether k was not revoked before.
func (s *KeySet) Revoke(k PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked[k] {
		return false
	}
	s.revoked[k] = true
	return true
}

// Keys lists the trusted keys (members not revoked), sorted.
func (s *KeySet) Keys() []PublicKey {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	out := make([]PublicKey, 0, len(s.keys))
	for k := range s.keys {
		if !s.revoked[k] {
			out = append(out, k)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b PublicKey) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// String lists the trusted keys, comma-separated.
func (s *KeySet) String() string {
	ks := s.Keys()
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = k.String()
	}
	return strings.Join(parts, ",")
}

// untrusted is the error for a signature by pub that trust refuses.
func untrusted(what string, pub PublicKey, trust Trust) error {
	if r, ok := trust.(interface{ Revoked(PublicKey) bool }); ok && r.Revoked(pub) {
		return fmt.Errorf("%w: %w: %s signed by %s, which a revocation list revoked", ErrUntrusted, ErrRevoked, what, pub)
	}
	if k, ok := trust.(PublicKey); ok {
		return fmt.Errorf("%w: %s signed by %s, trusted key is %s", ErrUntrusted, what, pub, k)
	}
	return fmt.Errorf("%w: %s signed by %s, not one of the trusted keys (%v)", ErrUntrusted, what, pub, trust)
}

// ParseKeyList parses a comma-separated list of printed public keys (one
// --trust value); empty items are skipped.
func ParseKeyList(s string) ([]PublicKey, error) {
	var out []PublicKey
	for item := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, err := ParsePublicKey(item)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// ParseTrustFile parses a trust file: one printed public key per line;
// blank lines and everything from a '#' to the end of its line are ignored.
// An error names the line.
func ParseTrustFile(b []byte) ([]PublicKey, error) {
	var out []PublicKey
	for n, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, err := ParsePublicKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		if len(out) == MaxTrustedKeys {
			return nil, fmt.Errorf("line %d: %w: more than %d keys", n+1, ErrTooLarge, MaxTrustedKeys)
		}
		out = append(out, k)
	}
	return out, nil
}
