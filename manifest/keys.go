package manifest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/shoal-cdn/shoal/core"
)

// ErrBadKey is returned for a malformed publisher key.
var ErrBadKey = errors.New("bad publisher key")

// PublicKey is a publisher's Ed25519 public key. Its printed form (String)
// is what receivers pass as --trust.
type PublicKey [ed25519.PublicKeySize]byte

// String prints the key as unpadded base64url (43 characters).
func (k PublicKey) String() string { return base64.RawURLEncoding.EncodeToString(k[:]) }

// ParsePublicKey parses the printed form of a public key. Space around it
// (the newline of a key read from a file) is ignored; anything inside it,
// a line break included, is an error.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	if !core.DecodeBase64URL(k[:], strings.TrimSpace(s)) {
		return k, fmt.Errorf("%w: %q: want %d URL-safe base64 characters as printed by shoal keygen", ErrBadKey, s, base64.RawURLEncoding.EncodedLen(len(k)))
	}
	return k, nil
}

// MarshalText encodes the printed form (for JSON).
func (k PublicKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes the printed form.
func (k *PublicKey) UnmarshalText(b []byte) error {
	v, err := ParsePublicKey(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// GenerateKey makes a new publisher key pair.
func GenerateKey() (ed25519.PrivateKey, PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, PublicKey{}, err
	}
	return priv, PublicKey(pub), nil
}

// PublicOf returns the public half of priv.
func PublicOf(priv ed25519.PrivateKey) PublicKey {
	return PublicKey(priv.Public().(ed25519.PublicKey))
}

// WriteKeyFile writes priv as a PKCS#8 PEM file readable only by its owner.
// It refuses to overwrite an existing file so a key is never lost by accident.
func WriteKeyFile(path string, priv ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return f.Close()
}

// ReadKeyFile reads a key written by WriteKeyFile.
func ReadKeyFile(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s: not a PEM \"PRIVATE KEY\" file", ErrBadKey, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: %T is not an Ed25519 key", ErrBadKey, path, k)
	}
	return priv, nil
}
