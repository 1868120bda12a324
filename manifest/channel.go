package manifest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shoal-cdn/shoal/core"
)

// A live channel is a sequence of signed channel updates. Each update lists
// the rolling window of segments a receiver may play right now; every
// segment is an ordinary content (a signed single-file manifest), so it is
// fetched, verified and swarmed like any other content. Updates carry a
// strictly increasing sequence number: a receiver keeps the newest valid one
// and ignores the rest, so a replayed old update can never roll a channel
// back.

// ChannelUpdateVersion is the channel update format this package reads and
// writes.
const ChannelUpdateVersion = 1

// ChannelSigningDomain prefixes the signed bytes of a channel update, so its
// signature can never be replayed as a manifest signature or vice versa.
const ChannelSigningDomain = "shoal channel update v1\x00"

// channelIDDomain separates channel IDs from every other SHA-256 in Shoal.
const channelIDDomain = "shoal channel id v1\x00"

// Limits on what DecodeChannelUpdate accepts.
const (
	MaxChannelUpdateSize = 1 << 20
	MaxChannelSegments   = 1024
	MaxChannelNameLen    = 255
	MaxSegmentNameLen    = 255
)

// Channel errors, wrapped with detail. Malformed input, canonical form and
// signatures reuse ErrMalformed, ErrNonCanonical, ErrBadSignature,
// ErrUntrusted and ErrTooLarge.
var (
	// ErrStaleUpdate is for callers that hold a newer (or the same) update
	// than the one offered; see Newer.
	ErrStaleUpdate = errors.New("channel update not newer than the one held")
	// ErrWrongChannel means an update belongs to another channel.
	ErrWrongChannel = errors.New("channel update for another channel")
	// ErrBadChannelID means a printed channel ID does not parse.
	ErrBadChannelID = errors.New("bad channel ID")
)

// ChannelID names a live channel: SHA-256 over a domain string, the
// publisher key and the channel name. Only the key's holder can sign
// updates for it, and one key can run many channels.
type ChannelID [32]byte

// ChannelIDOf returns the ID of the channel name of publisher pub.
func ChannelIDOf(pub PublicKey, name string) ChannelID {
	h := sha256.New()
	h.Write([]byte(channelIDDomain))
	h.Write(pub[:])
	h.Write([]byte(name))
	var id ChannelID
	h.Sum(id[:0])
	return id
}

// String prints the ID as unpadded base64url (43 characters), safe in URLs
// and file names.
func (c ChannelID) String() string { return base64.RawURLEncoding.EncodeToString(c[:]) }

// Short is the first 10 characters of String, for logs.
func (c ChannelID) Short() string { return c.String()[:10] }

// ParseChannelID parses the printed form of a channel ID.
func ParseChannelID(s string) (ChannelID, error) {
	var c ChannelID
	if !core.DecodeBase64URL(c[:], s) {
		return c, fmt.Errorf("%w: %q: want %d URL-safe base64 characters", ErrBadChannelID, s, base64.RawURLEncoding.EncodedLen(len(c)))
	}
	return c, nil
}

// ChannelUpdate is one signed state of a live channel: the rolling window of
// segments, oldest first.
type ChannelUpdate struct {
	Version        int              `json:"version"`
	Channel        string           `json:"channel"`
	Publisher      PublicKey        `json:"publisher"`
	Seq            uint64           `json:"seq"` // strictly increasing per channel
	Created        time.Time        `json:"created"`
	TargetDuration int64            `json:"target_duration"` // seconds, as in EXT-X-TARGETDURATION
	MediaSequence  uint64           `json:"media_sequence"`  // Seq of Segments[0]
	Segments       []ChannelSegment `json:"segments"`
	Ended          bool             `json:"ended,omitempty"` // no segment will follow (EXT-X-ENDLIST)
	Signature      []byte           `json:"signature,omitempty"`
}

// ChannelSegment is one segment of the window. Its bytes are the single file
// of content Content; Size and the content's manifest must agree.
type ChannelSegment struct {
	Seq        uint64         `json:"seq"`  // media sequence number
	Name       string         `json:"name"` // file name, one path element (the gateway serves it under it)
	DurationMs int64          `json:"duration_ms"`
	Size       int64          `json:"size"`
	Content    core.ContentID `json:"content"`
}

// Duration is the segment's duration.
func (s ChannelSegment) Duration() time.Duration {
	return time.Duration(s.DurationMs) * time.Millisecond
}

// ID is the update's channel ID.
func (u *ChannelUpdate) ID() ChannelID { return ChannelIDOf(u.Publisher, u.Channel) }

// Segment returns the window's segment called name.
func (u *ChannelUpdate) Segment(name string) (ChannelSegment, bool) {
	for _, s := range u.Segments {
		if s.Name == name {
			return s, true
		}
	}
	return ChannelSegment{}, false
}

// Newer reports whether next should replace prev: prev is nil, or next has
// a higher sequence number. Both must already be verified.
func Newer(prev, next *ChannelUpdate) bool {
	return next != nil && (prev == nil || next.Seq > prev.Seq)
}

// Sign sets Version, Publisher and Signature from priv.
func (u *ChannelUpdate) Sign(priv ed25519.PrivateKey) error {
	u.Version = ChannelUpdateVersion
	u.Publisher = PublicOf(priv)
	u.Signature = nil
	if err := u.validate(); err != nil {
		return err
	}
	msg, err := u.signedBytes()
	if err != nil {
		return err
	}
	u.Signature = ed25519.Sign(priv, msg)
	return nil
}

func (u *ChannelUpdate) signedBytes() ([]byte, error) {
	v := *u
	v.Signature = nil
	b, err := json.Marshal(&v)
	if err != nil {
		return nil, err
	}
	return append([]byte(ChannelSigningDomain), b...), nil
}

// Encode returns the canonical encoding of a signed update.
func (u *ChannelUpdate) Encode() ([]byte, error) {
	if len(u.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: channel update is not signed", ErrBadSignature)
	}
	return json.Marshal(u)
}

// DecodeChannelUpdate parses and checks a signed channel update: size,
// version, structure, canonical form, the window's consistency, the
// signature, and that trust trusts the signer.
func DecodeChannelUpdate(b []byte, trust Trust) (*ChannelUpdate, error) {
	if len(b) > MaxChannelUpdateSize {
		return nil, fmt.Errorf("%w: channel update of %d bytes, at most %d", ErrTooLarge, len(b), MaxChannelUpdateSize)
	}
	u := new(ChannelUpdate)
	if err := decodeStrict(b, "channel update", u, ChannelUpdateVersion); err != nil {
		return nil, err
	}
	if err := u.validate(); err != nil {
		return nil, err
	}
	if len(u.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d signature bytes, want %d", ErrBadSignature, len(u.Signature), ed25519.SignatureSize)
	}
	enc, err := u.Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(enc, b) {
		return nil, fmt.Errorf("%w: channel update re-encodes differently", ErrNonCanonical)
	}
	msg, err := u.signedBytes()
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(u.Publisher[:], msg, u.Signature) {
		return nil, fmt.Errorf("%w: channel update %d of %q does not verify under publisher %s", ErrBadSignature, u.Seq, u.Channel, u.Publisher)
	}
	if !trust.Trusts(u.Publisher) {
		return nil, untrusted("channel update", u.Publisher, trust)
	}
	return u, nil
}

func (u *ChannelUpdate) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: channel update: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if u.Channel == "" || len(u.Channel) > MaxChannelNameLen || !utf8.ValidString(u.Channel) || strings.ContainsRune(u.Channel, 0) {
		return bad("channel name must be 1 to %d bytes of UTF-8 without NUL", MaxChannelNameLen)
	}
	if u.TargetDuration <= 0 || u.TargetDuration > int64(24*time.Hour/time.Second) {
		return bad("target duration %d s out of range", u.TargetDuration)
	}
	if len(u.Segments) > MaxChannelSegments {
		return fmt.Errorf("%w: %d segments in a channel update, at most %d", ErrTooLarge, len(u.Segments), MaxChannelSegments)
	}
	seen := make(map[string]bool, len(u.Segments))
	for i, s := range u.Segments {
		if s.Seq != u.MediaSequence+uint64(i) {
			return bad("segment %d has sequence %d, want %d (the window must be consecutive)", i, s.Seq, u.MediaSequence+uint64(i))
		}
		if err := CheckPath(s.Name); err != nil || strings.Contains(s.Name, "/") || len(s.Name) > MaxSegmentNameLen || !printableASCII(s.Name) || s.Name == "index.m3u8" {
			return bad("segment %d name %q must be one printable ASCII path element other than index.m3u8", s.Seq, s.Name)
		}
		if seen[s.Name] {
			return fmt.Errorf("%w: channel update: segment name %q twice", ErrDuplicate, s.Name)
		}
		seen[s.Name] = true
		// A segment may run up to one second past the rounded target.
		if s.DurationMs <= 0 || s.DurationMs > (u.TargetDuration+1)*1000 {
			return bad("segment %d duration %d ms out of range for target %d s", s.Seq, s.DurationMs, u.TargetDuration)
		}
		if s.Size <= 0 || s.Size > MaxFileSize {
			return bad("segment %d size %d out of range", s.Seq, s.Size)
		}
	}
	return nil
}
