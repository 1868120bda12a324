package netx

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// Identity is how a host picks its libp2p identity (Libp2pConfig.Identity).
type Identity string

// Identity modes.
const (
	// IdentityFixed keeps one key (StateDir/peer.key) for good: the swarm's
	// bans, choking history and tracker records keep applying to the peer.
	IdentityFixed Identity = "fixed"
	// IdentityDaily derives a new key for each UTC day from a secret seed
	// (StateDir/identity.seed): anyone without the seed cannot link one
	// day's peer ID to another's. The key is chosen when the host starts,
	// so a peer running across midnight takes the new day's identity at
	// its next start.
	IdentityDaily Identity = "daily"
)

// SeedFileName is the name of the identity seed inside a host's state dir.
const SeedFileName = "identity.seed"

// seedLen is the seed's size: 256 bits of secret.
const seedLen = 32

// ParseIdentity parses --identity: fixed (or empty) or daily.
func ParseIdentity(s string) (Identity, error) {
	switch Identity(s) {
	case "", IdentityFixed:
		return IdentityFixed, nil
	case IdentityDaily:
		return IdentityDaily, nil
	}
	return "", fmt.Errorf("identity %q: want fixed or daily", s)
}

// Day is the UTC day t falls in, counted from 1970-01-01 (day 0).
func Day(t time.Time) int64 {
	u := t.Unix()
	d := u / 86400
	if u < 0 && u%86400 != 0 {
		d--
	}
	return d
}

// DailyKey derives the Ed25519 identity key of UTC day from seed: the
// Ed25519 seed is HKDF-SHA256 of the secret seed with the day number as
// context, so every day's key is independent of the others' to anyone who
// lacks the seed, and the same seed and day always give the same key.
func DailyKey(seed []byte, day int64) (crypto.PrivKey, error) {
	if len(seed) < seedLen {
		return nil, fmt.Errorf("daily identity: %w: seed of %d bytes, want at least %d", ErrBadKey, len(seed), seedLen)
	}
	k, err := hkdf.Key(sha256.New, seed, nil, "shoal peer identity, UTC day "+strconv.FormatInt(day, 10), ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("daily identity: %w", err)
	}
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(k))
	if err != nil {
		return nil, fmt.Errorf("daily identity: %w", err)
	}
	return priv, nil
}

// LoadOrCreateSeed returns the identity seed stored at path, creating it
// (32 random bytes, mode 0600, parent directories 0700) if missing.
func LoadOrCreateSeed(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(b) != seedLen {
			return nil, fmt.Errorf("load %s: %w: identity seed of %d bytes, want %d", path, ErrBadKey, len(b), seedLen)
		}
		return b, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("load identity seed: %w", err)
	}
	b = make([]byte, seedLen)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate identity seed: %w", err)
	}
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("save identity seed: %w", err)
	}
	return b, nil
}
