// Package core holds the small shared types of Shoal: hashes, content IDs,
// chunk-size limits and the clock. It imports nothing of Shoal's, so every
// other package may import it.
package core

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// HashSize is the size in bytes of every hash Shoal uses (SHA-256).
const HashSize = sha256.Size

// Hash is a SHA-256 digest: of a chunk, a Merkle node or a signed manifest.
type Hash [HashSize]byte

// ErrBadHash is returned when a string is not a well-formed hash or content ID.
var ErrBadHash = errors.New("malformed hash")

// SumSHA256 returns the SHA-256 digest of b.
func SumSHA256(b []byte) Hash { return Hash(sha256.Sum256(b)) }

// String returns the hash as lower-case hex, the form used in origin paths.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 12 hex digits, for logs and error messages.
func (h Hash) Short() string { return h.String()[:12] }

// IsZero reports whether h is all zeroes (unset).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses the lower-case hex form produced by String.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*HashSize || strings.ToLower(s) != s {
		return h, fmt.Errorf("%w: %q: want %d lower-case hex digits", ErrBadHash, s, 2*HashSize)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: %q: %v", ErrBadHash, s, err)
	}
	return h, nil
}

// MarshalText encodes the hash as hex (for JSON).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes the hex form.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ContentID names one immutable signed manifest: the SHA-256 of its bytes,
// printed URL-safe (unpadded base64url, 43 characters).
type ContentID Hash

// String returns the URL-safe printed form.
func (c ContentID) String() string { return base64.RawURLEncoding.EncodeToString(c[:]) }

// Short returns a prefix for logs.
func (c ContentID) Short() string { return c.String()[:10] }

// ParseContentID parses the printed form produced by String.
func ParseContentID(s string) (ContentID, error) {
	var c ContentID
	if !DecodeBase64URL(c[:], s) {
		return c, fmt.Errorf("%w: content ID %q: want %d URL-safe base64 characters", ErrBadHash, s, base64.RawURLEncoding.EncodedLen(HashSize))
	}
	return c, nil
}

// DecodeBase64URL decodes s, unpadded base64url, into exactly len(dst) bytes,
// and reports whether s was the one printed form of such bytes. It is the
// strict decoder for identifiers: encoding/base64 skips '\r' and '\n' even in
// Strict mode, so an ID with a line break inside would otherwise decode, and
// two strings would name one ID.
func DecodeBase64URL(dst []byte, s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(len(dst)) {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	n, err := base64.RawURLEncoding.Strict().Decode(dst, []byte(s))
	return err == nil && n == len(dst)
}

// MarshalText encodes the content ID in its printed form (for JSON).
func (c ContentID) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText decodes the printed form.
func (c *ContentID) UnmarshalText(b []byte) error {
	v, err := ParseContentID(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}
