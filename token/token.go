// Package token is Shoal's access tokens: compact Ed25519-signed grants that
// say which tenant may fetch what (a content, a channel, or everything a
// publisher signs under a name prefix), from where (an optional region), as
// whom (an optional libp2p peer ID), and when (not-before and expiry).
//
// A publisher key signs tokens directly, or signs a Delegation that lets a
// tenant's own token service sign them with its key, within the delegation's
// tenant, scope and expiry. A Verifier holds the trusted publisher keys and a
// clock and checks a token against what is being accessed (a Subject).
//
// It is a building block: it imports core and manifest, does no I/O, and the
// tracker, the swarm engine and the roles import it.
//
// # Encoding (this is the specification)
//
// A token is printed as unpadded base64url of its binary form; all integers
// are big-endian and every string is length-prefixed:
//
//	version    uint8  (=1)
//	type       uint8  ('T')
//	issuer     [32]byte  Ed25519 public key that signed the token
//	tenant     uint8 length (1..MaxTenant) | bytes of [A-Za-z0-9._:-]
//	scope      uint8 kind | kind's value: content or channel [32]byte,
//	           prefix uint8 length (0..MaxPrefix) | UTF-8, any: nothing
//	region     uint8 length (0..MaxRegion) | printable ASCII
//	peer       uint8 length (0..MaxPeer) | printable ASCII
//	not-before int64  Unix seconds
//	expiry     int64  Unix seconds, after not-before
//	delegation uint16 length (0 = none) | a delegation's binary form
//	signature  [64]byte over "shoal token v1\x00" and every byte before it
//
// A delegation has the same shape: version (=1), type ('D'), publisher
// [32]byte, tenant, scope, delegate [32]byte, expiry int64 and a signature
// over "shoal delegation v1\x00" and the bytes before it.
//
// Decoding is strict: a token is accepted only if re-encoding it gives the
// same bytes, and it is at most MaxTokenBytes long.
package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

// Format constants.
const (
	Version          = 1
	typeToken        = 'T'
	typeDelegation   = 'D'
	TokenDomain      = "shoal token v1\x00"
	DelegationDomain = "shoal delegation v1\x00"
)

// Limits on what Decode accepts. They bound every field, so a token (with
// its delegation) never exceeds MaxTokenBytes.
const (
	MaxTenant     = 64
	MaxPrefix     = 255
	MaxRegion     = 64
	MaxPeer       = 128
	MaxTokenBytes = 1024
	// MaxPrinted is the longest printed token (base64url of MaxTokenBytes).
	MaxPrinted = (MaxTokenBytes*8 + 5) / 6
)

// ScopeKind says what a scope grants.
type ScopeKind uint8

// Scope kinds. Zero is unused so an all-zero token is rejected.
const (
	ScopeContent ScopeKind = 1 // one content ID
	ScopeChannel ScopeKind = 2 // one live channel ID
	ScopePrefix  ScopeKind = 3 // every content the publisher signs under a name prefix
	ScopeAny     ScopeKind = 4 // everything the publisher signs (an operator's token)
)

// String names the kind (the JSON form too).
func (k ScopeKind) String() string {
	switch k {
	case ScopeContent:
		return "content"
	case ScopeChannel:
		return "channel"
	case ScopePrefix:
		return "prefix"
	case ScopeAny:
		return "any"
	}
	return fmt.Sprintf("scope(%d)", uint8(k))
}

// Scope is what a token (or a delegation's limit) grants.
type Scope struct {
	Kind    ScopeKind
	Content core.ContentID     // ScopeContent
	Channel manifest.ChannelID // ScopeChannel
	Prefix  string             // ScopePrefix
}

// ContentScope, ChannelScope, PrefixScope and AnyScope build scopes.
func ContentScope(id core.ContentID) Scope     { return Scope{Kind: ScopeContent, Content: id} }
func ChannelScope(id manifest.ChannelID) Scope { return Scope{Kind: ScopeChannel, Channel: id} }
func PrefixScope(p string) Scope               { return Scope{Kind: ScopePrefix, Prefix: p} }
func AnyScope() Scope                          { return Scope{Kind: ScopeAny} }

// String prints the scope as kind:value.
func (s Scope) String() string {
	switch s.Kind {
	case ScopeContent:
		return "content:" + s.Content.String()
	case ScopeChannel:
		return "channel:" + s.Channel.String()
	case ScopePrefix:
		return fmt.Sprintf("prefix:%q", s.Prefix)
	}
	return s.Kind.String()
}

// MarshalJSON prints {"kind":…,"value":…}.
func (s Scope) MarshalJSON() ([]byte, error) {
	v := struct {
		Kind  string `json:"kind"`
		Value string `json:"value,omitempty"`
	}{Kind: s.Kind.String()}
	switch s.Kind {
	case ScopeContent:
		v.Value = s.Content.String()
	case ScopeChannel:
		v.Value = s.Channel.String()
	case ScopePrefix:
		v.Value = s.Prefix
	}
	return json.Marshal(v)
}

// Claims are what a token says. Times are whole seconds.
type Claims struct {
	Issuer     manifest.PublicKey `json:"issuer"`
	Tenant     string             `json:"tenant"`
	Scope      Scope              `json:"scope"`
	Region     string             `json:"region,omitempty"`
	Peer       string             `json:"peer,omitempty"`
	NotBefore  time.Time          `json:"not_before"`
	Expiry     time.Time          `json:"expiry"`
	Delegation *Delegation        `json:"delegation,omitempty"`
}

// Token is a decoded token: its claims and signature, not yet verified.
type Token struct {
	Claims
	Signature []byte `json:"signature"`
	raw       []byte // the binary form, for verification
}

// Delegation lets the Delegate key sign tokens for Tenant within Scope until
// Expiry, on behalf of Publisher.
type Delegation struct {
	Publisher manifest.PublicKey `json:"publisher"`
	Tenant    string             `json:"tenant"`
	Scope     Scope              `json:"scope"`
	Delegate  manifest.PublicKey `json:"delegate"`
	Expiry    time.Time          `json:"expiry"`
	Signature []byte             `json:"signature"`
}

// Errors. Check wraps them with detail; Reason maps them to short audit
// reasons.
var (
	ErrMalformed    = errors.New("malformed token")
	ErrMissing      = errors.New("no token")
	ErrBadSignature = errors.New("token signature does not verify")
	ErrUntrusted    = errors.New("token signed by an untrusted key")
	ErrExpired      = errors.New("token expired")
	ErrNotYetValid  = errors.New("token not yet valid")
	ErrTenant       = errors.New("token is for another tenant")
	ErrScope        = errors.New("token out of scope")
	ErrPeer         = errors.New("token bound to another peer")
	ErrRegion       = errors.New("token region not allowed")
	ErrDelegation   = errors.New("bad token delegation")
	// ErrNeedName means the token is prefix-scoped and the Subject lacks the
	// manifest's name or publisher: look the manifest up and check again.
	ErrNeedName = errors.New("prefix-scoped token needs the manifest's name and publisher")
)

// Reason maps an error of Check to a short, stable reason for audit events.
func Reason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{ErrMissing, "missing"}, {ErrMalformed, "malformed"}, {ErrDelegation, "delegation"},
		{ErrUntrusted, "untrusted"}, {ErrBadSignature, "bad-signature"}, {ErrExpired, "expired"},
		{ErrNotYetValid, "not-yet-valid"}, {ErrTenant, "tenant"}, {ErrScope, "scope"},
		{ErrPeer, "peer-binding"}, {ErrRegion, "region"}, {ErrNeedName, "need-name"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	if err == nil {
		return ""
	}
	return "error"
}

// CheckTenant reports whether t is a valid tenant name: 1..MaxTenant bytes
// of letters, digits and . _ : -.
func CheckTenant(t string) error {
	if t == "" || len(t) > MaxTenant {
		return fmt.Errorf("tenant %q: want 1 to %d characters", t, MaxTenant)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return fmt.Errorf("tenant %q: byte %d (%q) is not a letter, digit, '.', '_', ':' or '-'", t, i, c)
		}
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (s Scope) validate() error {
	switch s.Kind {
	case ScopeContent, ScopeChannel, ScopeAny:
		return nil
	case ScopePrefix:
		if len(s.Prefix) > MaxPrefix || !utf8.ValidString(s.Prefix) {
			return fmt.Errorf("prefix is not UTF-8 of at most %d bytes", MaxPrefix)
		}
		return nil
	}
	return fmt.Errorf("unknown scope kind %d", uint8(s.Kind))
}

func (c *Claims) validate() error {
	if err := CheckTenant(c.Tenant); err != nil {
		return err
	}
	if err := c.Scope.validate(); err != nil {
		return err
	}
	if len(c.Region) > MaxRegion || !printable(c.Region) {
		return fmt.Errorf("region %q: want at most %d printable ASCII characters", c.Region, MaxRegion)
	}
	if len(c.Peer) > MaxPeer || !printable(c.Peer) {
		return fmt.Errorf("peer %q: want at most %d printable ASCII characters", c.Peer, MaxPeer)
	}
	if !c.Expiry.After(c.NotBefore) {
		return fmt.Errorf("expiry %s is not after not-before %s", c.Expiry.UTC().Format(time.RFC3339), c.NotBefore.UTC().Format(time.RFC3339))
	}
	if d := c.Delegation; d != nil {
		if d.Tenant != c.Tenant {
			return fmt.Errorf("delegation is for tenant %q, token for %q", d.Tenant, c.Tenant)
		}
		if d.Delegate != c.Issuer {
			return fmt.Errorf("delegation names key %s, token is signed by %s", d.Delegate, c.Issuer)
		}
	}
	return nil
}

func (d *Delegation) validate() error {
	if err := CheckTenant(d.Tenant); err != nil {
		return err
	}
	return d.Scope.validate()
}

func appendStr8(b []byte, s string) []byte { return append(append(b, byte(len(s))), s...) }

func appendScope(b []byte, s Scope) []byte {
	b = append(b, byte(s.Kind))
	switch s.Kind {
	case ScopeContent:
		b = append(b, s.Content[:]...)
	case ScopeChannel:
		b = append(b, s.Channel[:]...)
	case ScopePrefix:
		b = appendStr8(b, s.Prefix)
	}
	return b
}

func (d *Delegation) appendUnsigned(b []byte) []byte {
	b = append(b, Version, typeDelegation)
	b = append(b, d.Publisher[:]...)
	b = appendStr8(b, d.Tenant)
	b = appendScope(b, d.Scope)
	b = append(b, d.Delegate[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(d.Expiry.Unix()))
}

func (c *Claims) appendUnsigned(b []byte) ([]byte, error) {
	b = append(b, Version, typeToken)
	b = append(b, c.Issuer[:]...)
	b = appendStr8(b, c.Tenant)
	b = appendScope(b, c.Scope)
	b = appendStr8(b, c.Region)
	b = appendStr8(b, c.Peer)
	b = binary.BigEndian.AppendUint64(b, uint64(c.NotBefore.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Expiry.Unix()))
	if c.Delegation == nil {
		return binary.BigEndian.AppendUint16(b, 0), nil
	}
	if len(c.Delegation.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: delegation is not signed", ErrDelegation)
	}
	db := append(c.Delegation.appendUnsigned(nil), c.Delegation.Signature...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(db)))
	return append(b, db...), nil
}

// Issue signs c with priv (c.Issuer is set from it) and returns the printed
// token. A delegated token carries its Delegation, whose Delegate must be
// priv's public key.
func Issue(priv ed25519.PrivateKey, c Claims) (string, error) {
	c.Issuer = manifest.PublicOf(priv)
	c.NotBefore = c.NotBefore.Truncate(time.Second)
	c.Expiry = c.Expiry.Truncate(time.Second)
	if err := c.validate(); err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	b, err := c.appendUnsigned(nil)
	if err != nil {
		return "", err
	}
	sig := ed25519.Sign(priv, append([]byte(TokenDomain), b...))
	b = append(b, sig...)
	if len(b) > MaxTokenBytes {
		return "", fmt.Errorf("issue token: %d bytes, at most %d", len(b), MaxTokenBytes)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Delegate signs d with the publisher key priv (d.Publisher is set from it)
// and returns the printed delegation.
func Delegate(priv ed25519.PrivateKey, d Delegation) (string, error) {
	d.Publisher = manifest.PublicOf(priv)
	d.Expiry = d.Expiry.Truncate(time.Second)
	if err := d.validate(); err != nil {
		return "", fmt.Errorf("delegate: %w", err)
	}
	b := d.appendUnsigned(nil)
	b = append(b, ed25519.Sign(priv, append([]byte(DelegationDomain), b...))...)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// decoder reads a binary token, remembering the offset for error messages.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrMalformed, d.off, fmt.Sprintf(format, a...))
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b)-d.off {
		d.fail("%s needs %d bytes, %d left", what, n, len(d.b)-d.off)
		return nil
	}
	v := d.b[d.off : d.off+n]
	d.off += n
	return v
}

func (d *decoder) u8(what string) byte {
	v := d.take(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

func (d *decoder) str8(what string, max int) string {
	start := d.off
	n := int(d.u8(what + " length"))
	if d.err == nil && n > max {
		d.off = start
		d.fail("%s of %d bytes, at most %d", what, n, max)
	}
	return string(d.take(n, what))
}

func (d *decoder) key(what string) (k manifest.PublicKey) {
	copy(k[:], d.take(len(k), what))
	return k
}

func (d *decoder) time(what string) time.Time {
	v := d.take(8, what)
	if v == nil {
		return time.Time{}
	}
	return time.Unix(int64(binary.BigEndian.Uint64(v)), 0).UTC()
}

func (d *decoder) scope() Scope {
	start := d.off
	s := Scope{Kind: ScopeKind(d.u8("scope kind"))}
	switch s.Kind {
	case ScopeContent:
		copy(s.Content[:], d.take(core.HashSize, "content ID"))
	case ScopeChannel:
		copy(s.Channel[:], d.take(len(s.Channel), "channel ID"))
	case ScopePrefix:
		s.Prefix = d.str8("prefix", MaxPrefix)
	case ScopeAny:
	default:
		if d.err == nil {
			d.off = start
			d.fail("unknown scope kind %d", uint8(s.Kind))
		}
	}
	return s
}

func (d *decoder) header(typ byte, what string) {
	if v := d.u8("version"); d.err == nil && v != Version {
		d.off--
		d.fail("%s version %d, this Shoal reads version %d", what, v, Version)
	}
	if t := d.u8("type"); d.err == nil && t != typ {
		d.off--
		d.fail("type %q is not a %s", t, what)
	}
}

func (d *decoder) delegation() *Delegation {
	start := d.off
	g := &Delegation{}
	d.header(typeDelegation, "delegation")
	g.Publisher = d.key("publisher key")
	g.Tenant = d.str8("tenant", MaxTenant)
	g.Scope = d.scope()
	g.Delegate = d.key("delegate key")
	g.Expiry = d.time("expiry")
	g.Signature = append([]byte(nil), d.take(ed25519.SignatureSize, "signature")...)
	if d.err == nil {
		if err := g.validate(); err != nil {
			d.off = start
			d.fail("delegation: %v", err)
		}
	}
	return g
}

func decodeBase64(s, what string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty %s", ErrMalformed, what)
	}
	if len(s) > MaxPrinted {
		return nil, fmt.Errorf("%w: %s of %d characters, at most %d", ErrMalformed, what, len(s), MaxPrinted)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return nil, fmt.Errorf("%w: %s character %d (%q) is not URL-safe base64", ErrMalformed, what, i, c)
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	return b, nil
}

// Decode parses a printed token without verifying it.
func Decode(s string) (*Token, error) {
	b, err := decodeBase64(s, "token")
	if err != nil {
		return nil, err
	}
	return DecodeBinary(b)
}

// DecodeBinary parses a token's binary form without verifying it.
func DecodeBinary(b []byte) (*Token, error) {
	if len(b) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(b), MaxTokenBytes)
	}
	d := &decoder{b: b}
	t := &Token{}
	d.header(typeToken, "token")
	t.Issuer = d.key("issuer key")
	t.Tenant = d.str8("tenant", MaxTenant)
	t.Scope = d.scope()
	t.Region = d.str8("region", MaxRegion)
	t.Peer = d.str8("peer", MaxPeer)
	t.NotBefore = d.time("not-before")
	t.Expiry = d.time("expiry")
	if v := d.take(2, "delegation length"); v != nil {
		if n := int(binary.BigEndian.Uint16(v)); n > 0 {
			sub := &decoder{b: d.take(n, "delegation")}
			if d.err == nil {
				base := d.off - n
				t.Delegation = sub.delegation()
				if sub.err == nil && sub.off != n {
					sub.fail("%d bytes after the delegation", n-sub.off)
				}
				if sub.err != nil {
					// sub's message counts from the delegation's start.
					d.err = fmt.Errorf("%w: in the delegation (from byte %d): %s", ErrMalformed, base, strings.TrimPrefix(sub.err.Error(), ErrMalformed.Error()+": "))
				}
			}
		}
	}
	t.Signature = append([]byte(nil), d.take(ed25519.SignatureSize, "signature")...)
	if d.err == nil && d.off != len(b) {
		d.fail("%d bytes after the signature", len(b)-d.off)
	}
	if d.err != nil {
		return nil, d.err
	}
	if err := t.Claims.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	enc, err := t.Claims.appendUnsigned(nil)
	if err != nil || string(append(enc, t.Signature...)) != string(b) {
		return nil, fmt.Errorf("%w: not in canonical encoding", ErrMalformed)
	}
	t.raw = b
	return t, nil
}

// DecodeDelegation parses a printed delegation without verifying it.
func DecodeDelegation(s string) (*Delegation, error) {
	b, err := decodeBase64(s, "delegation")
	if err != nil {
		return nil, err
	}
	d := &decoder{b: b}
	g := d.delegation()
	if d.err == nil && d.off != len(b) {
		d.fail("%d bytes after the signature", len(b)-d.off)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w (delegation)", d.err)
	}
	return g, nil
}

// Encode returns the printed form of a decoded token.
func (t *Token) Encode() string { return base64.RawURLEncoding.EncodeToString(t.raw) }

// Verify reports whether d's signature verifies under its publisher key.
func (d *Delegation) Verify() bool {
	msg := append([]byte(DelegationDomain), d.appendUnsigned(nil)...)
	return ed25519.Verify(d.Publisher[:], msg, d.Signature)
}
