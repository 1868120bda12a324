package manifest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// A revocation list is a publisher's signed statement that some publisher
// keys, contents or live channels must no longer be trusted, served or
// kept. Any trusted key may sign one; each key has its own list, published
// at layout.RevocationPath(key) and spread between peers by gossip. Lists
// carry a sequence number: a receiver keeps the newest valid list of each
// signer, so an old list replayed can never un-revoke anything.

// RevocationVersion is the revocation list format this package reads and
// writes.
const RevocationVersion = 1

// RevocationSigningDomain prefixes the signed bytes of a revocation list, so
// its signature can never be replayed as a manifest or channel update
// signature.
const RevocationSigningDomain = "shoal revocation list v1\x00"

// Limits on what DecodeRevocation accepts.
const (
	MaxRevocationSize    = 512 << 10
	MaxRevocationEntries = 4096 // keys, contents and channels together
)

// ErrStaleRevocation is for callers that hold a list of the same signer
// with a sequence number at least as high; see (*Revocation).Newer.
var ErrStaleRevocation = errors.New("revocation list not newer than the one held")

// Revocation is one signed revocation list. Keys, Contents and Channels are
// each sorted (by printed form) without repeats: its canonical form.
type Revocation struct {
	Version   int              `json:"version"`
	Publisher PublicKey        `json:"publisher"`
	Seq       uint64           `json:"seq"` // strictly increasing per publisher
	Issued    time.Time        `json:"issued"`
	Keys      []PublicKey      `json:"keys,omitempty"`
	Contents  []core.ContentID `json:"contents,omitempty"`
	Channels  []ChannelID      `json:"channels,omitempty"`
	Signature []byte           `json:"signature,omitempty"`
}

// MarshalText encodes the printed form (for JSON).
func (c ChannelID) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText decodes the printed form.
func (c *ChannelID) UnmarshalText(b []byte) error {
	v, err := ParseChannelID(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Newer reports whether r should replace held, a list of the same signer:
// held is nil or has a lower sequence number.
func (r *Revocation) Newer(held *Revocation) bool {
	return held == nil || r.Seq > held.Seq
}

// RevokesKey reports whether the list names publisher key k.
func (r *Revocation) RevokesKey(k PublicKey) bool { return contains(r.Keys, k) }

// RevokesContent reports whether the list names content id.
func (r *Revocation) RevokesContent(id core.ContentID) bool { return contains(r.Contents, id) }

// RevokesChannel reports whether the list names channel ch.
func (r *Revocation) RevokesChannel(ch ChannelID) bool { return contains(r.Channels, ch) }

func contains[T interface{ String() string }](s []T, v T) bool {
	for _, x := range s {
		if x.String() == v.String() {
			return true
		}
	}
	return false
}

// Sign sorts and de-duplicates the lists, then sets Version, Publisher and
// Signature from priv.
func (r *Revocation) Sign(priv ed25519.PrivateKey) error {
	r.Version = RevocationVersion
	r.Publisher = PublicOf(priv)
	r.Signature = nil
	r.Keys = sortedUnique(r.Keys)
	r.Contents = sortedUnique(r.Contents)
	r.Channels = sortedUnique(r.Channels)
	r.Issued = r.Issued.UTC().Truncate(time.Second)
	if err := r.validate(); err != nil {
		return err
	}
	msg, err := r.signedBytes()
	if err != nil {
		return err
	}
	r.Signature = ed25519.Sign(priv, msg)
	return nil
}

func sortedUnique[T interface{ String() string }](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	seen := make(map[string]T, len(s))
	for _, v := range s {
		seen[v.String()] = v
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]T, len(keys))
	for i, k := range keys {
		out[i] = seen[k]
	}
	return out
}

func (r *Revocation) signedBytes() ([]byte, error) {
	v := *r
	v.Signature = nil
	b, err := json.Marshal(&v)
	if err != nil {
		return nil, err
	}
	return append([]byte(RevocationSigningDomain), b...), nil
}

// Encode returns the canonical encoding of a signed list.
func (r *Revocation) Encode() ([]byte, error) {
	if len(r.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: revocation list is not signed", ErrBadSignature)
	}
	return json.Marshal(r)
}

// DecodeRevocation parses and checks a signed revocation list: size,
// version, structure, bounds, canonical form, the signature, and that trust
// trusts the signer.
func DecodeRevocation(b []byte, trust Trust) (*Revocation, error) {
	if len(b) > MaxRevocationSize {
		return nil, fmt.Errorf("%w: revocation list of %d bytes, at most %d", ErrTooLarge, len(b), MaxRevocationSize)
	}
	r := new(Revocation)
	if err := decodeStrict(b, "revocation list", r, RevocationVersion); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	if len(r.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: revocation list: %d signature bytes, want %d", ErrBadSignature, len(r.Signature), ed25519.SignatureSize)
	}
	enc, err := r.Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(enc, b) {
		return nil, fmt.Errorf("%w: revocation list re-encodes differently", ErrNonCanonical)
	}
	msg, err := r.signedBytes()
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(r.Publisher[:], msg, r.Signature) {
		return nil, fmt.Errorf("%w: revocation list %d does not verify under publisher %s", ErrBadSignature, r.Seq, r.Publisher)
	}
	if !trust.Trusts(r.Publisher) {
		return nil, untrusted(fmt.Sprintf("revocation list %d", r.Seq), r.Publisher, trust)
	}
	return r, nil
}

func (r *Revocation) validate() error {
	if n := len(r.Keys) + len(r.Contents) + len(r.Channels); n > MaxRevocationEntries {
		return fmt.Errorf("%w: %d entries in a revocation list, at most %d", ErrTooLarge, n, MaxRevocationEntries)
	}
	if r.Seq == 0 {
		return fmt.Errorf("%w: revocation list sequence number 0: the first list is 1", ErrMalformed)
	}
	if r.Issued.IsZero() || !r.Issued.Equal(r.Issued.Truncate(time.Second)) || r.Issued.Location() != time.UTC {
		return fmt.Errorf("%w: revocation list issue time %v: want whole seconds in UTC", ErrMalformed, r.Issued)
	}
	if err := checkSorted("key", r.Keys); err != nil {
		return err
	}
	if err := checkSorted("content", r.Contents); err != nil {
		return err
	}
	return checkSorted("channel", r.Channels)
}

func checkSorted[T interface{ String() string }](what string, s []T) error {
	if s != nil && len(s) == 0 {
		return fmt.Errorf("%w: revocation list: empty %s list (omit it)", ErrNonCanonical, what)
	}
	for i := 1; i < len(s); i++ {
		if s[i-1].String() >= s[i].String() {
			return fmt.Errorf("%w: revocation list: %s %s out of order or repeated", ErrNonCanonical, what, s[i])
		}
	}
	return nil
}
