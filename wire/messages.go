package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/shoal-cdn/shoal/core"
)

// Flags are the handshake's option bits. Bits this version does not define
// are kept as received so a newer peer's handshake re-encodes unchanged.
type Flags uint8

const (
	// FlagSeeder says the sender has every chunk and will not request any.
	FlagSeeder Flags = 1 << 0
	// FlagFetchAll says the sender fetches the whole content (it wants every
	// chunk, as `shoal get` of a whole content or a prefetch=all policy
	// does), so it may be designated to fetch chunks nobody has from the
	// origin; peers without it fetch only what their readers ask for.
	FlagFetchAll Flags = 1 << 1
	// FlagToken says a Token frame follows the handshake and the
	// handshake's bitfield is withheld (empty) until tokens are checked;
	// see the package documentation.
	FlagToken Flags = 1 << 2
	// FlagHaveBatch says the sender understands Haves frames: it may be
	// sent batched HAVEs instead of one Have frame per chunk.
	FlagHaveBatch Flags = 1 << 3
)

// handshakeFixedLen is magic + version + flags + content ID + client length.
const handshakeFixedLen = len(Magic) + 2 + 1 + core.HashSize + 1

// Handshake is the first frame each way on a stream. Version is implied: the
// encoder writes Version and the decoder refuses any other.
type Handshake struct {
	Content core.ContentID
	Flags   Flags
	// Client names the sender's software, for logs; at most MaxClient bytes of UTF-8.
	Client string
	// Bits is the sender's chunk bitfield over the content's global chunk
	// indexes; nil encodes as an empty bitfield.
	Bits *Bitfield
}

// Type implements Message.
func (*Handshake) Type() Type { return TypeHandshake }

func (h *Handshake) bodyLen() int {
	return handshakeFixedLen + len(h.Client) + bitfieldLen(h.Bits)
}

func (h *Handshake) appendBody(b []byte) []byte {
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint16(b, Version)
	b = append(b, byte(h.Flags))
	b = append(b, h.Content[:]...)
	b = append(b, byte(len(h.Client)))
	b = append(b, h.Client...)
	return appendBitfield(b, h.Bits)
}

func (h *Handshake) validate() error {
	if len(h.Client) > MaxClient {
		return fmt.Errorf("%w: handshake client string is %d bytes, max %d", ErrMalformed, len(h.Client), MaxClient)
	}
	if !utf8.ValidString(h.Client) {
		return fmt.Errorf("%w: handshake client string %q is not UTF-8", ErrMalformed, h.Client)
	}
	return nil
}

func decodeHandshake(body []byte) (*Handshake, error) {
	if string(body[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("%w: handshake magic %q, want %q", ErrVersion, body[:len(Magic)], Magic)
	}
	p := body[len(Magic):]
	if v := binary.BigEndian.Uint16(p); v != Version {
		return nil, fmt.Errorf("%w: peer speaks version %d, this side %d", ErrVersion, v, Version)
	}
	h := &Handshake{Flags: Flags(p[2])}
	copy(h.Content[:], p[3:])
	p = p[3+core.HashSize:]
	n := int(p[0])
	p = p[1:]
	if n > MaxClient || n > len(p) {
		return nil, fmt.Errorf("%w: handshake client string of %d bytes (max %d, %d left)", ErrMalformed, n, MaxClient, len(p))
	}
	h.Client = string(p[:n])
	bf, err := decodeBitfield(p[n:])
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	h.Bits = bf
	return h, nil
}

// KeepAlive keeps an idle stream from being timed out; it carries nothing.
type KeepAlive struct{}

// Choke tells the peer its requests will not be served until Unchoke;
// requests already queued are dropped (the sender Rejects them).
type Choke struct{}

// Unchoke tells the peer it may send requests.
type Unchoke struct{}

// Interested tells the peer the sender wants chunks it has.
type Interested struct{}

// NotInterested withdraws Interested.
type NotInterested struct{}

// Type implements Message.
func (*KeepAlive) Type() Type { return TypeKeepAlive }

// Type implements Message.
func (*Choke) Type() Type { return TypeChoke }

// Type implements Message.
func (*Unchoke) Type() Type { return TypeUnchoke }

// Type implements Message.
func (*Interested) Type() Type { return TypeInterested }

// Type implements Message.
func (*NotInterested) Type() Type { return TypeNotInterested }

func (*KeepAlive) bodyLen() int     { return 0 }
func (*Choke) bodyLen() int         { return 0 }
func (*Unchoke) bodyLen() int       { return 0 }
func (*Interested) bodyLen() int    { return 0 }
func (*NotInterested) bodyLen() int { return 0 }

func (*KeepAlive) appendBody(b []byte) []byte     { return b }
func (*Choke) appendBody(b []byte) []byte         { return b }
func (*Unchoke) appendBody(b []byte) []byte       { return b }
func (*Interested) appendBody(b []byte) []byte    { return b }
func (*NotInterested) appendBody(b []byte) []byte { return b }

func (*KeepAlive) validate() error     { return nil }
func (*Choke) validate() error         { return nil }
func (*Unchoke) validate() error       { return nil }
func (*Interested) validate() error    { return nil }
func (*NotInterested) validate() error { return nil }

// Have announces that the sender now has (and has verified) one chunk.
type Have struct{ Index uint32 }

// Type implements Message.
func (*Have) Type() Type                   { return TypeHave }
func (*Have) bodyLen() int                 { return 4 }
func (h *Have) appendBody(b []byte) []byte { return binary.BigEndian.AppendUint32(b, h.Index) }
func (*Have) validate() error              { return nil }

// Haves announces, in one frame, that the sender now has (and has verified)
// every chunk in Indexes, as len(Indexes) Have frames would. Indexes holds
// 1..MaxHaves distinct chunk indexes in ascending order, each below
// MaxBitfield (the receiver checks them against the content's chunk count).
// Send it only to a peer whose handshake set FlagHaveBatch.
type Haves struct{ Indexes []uint32 }

// Type implements Message.
func (*Haves) Type() Type     { return TypeHaves }
func (h *Haves) bodyLen() int { return 4 * len(h.Indexes) }
func (h *Haves) appendBody(b []byte) []byte {
	for _, i := range h.Indexes {
		b = binary.BigEndian.AppendUint32(b, i)
	}
	return b
}
func (h *Haves) validate() error {
	if n := len(h.Indexes); n == 0 || n > MaxHaves {
		return fmt.Errorf("%w: haves of %d indexes, want 1..%d", ErrMalformed, n, MaxHaves)
	}
	for k, i := range h.Indexes {
		if i >= MaxBitfield {
			return fmt.Errorf("%w: haves index %d is beyond the largest content (%d chunks)", ErrMalformed, i, MaxBitfield)
		}
		if k > 0 && i <= h.Indexes[k-1] {
			return fmt.Errorf("%w: haves index %d follows %d: not strictly ascending", ErrMalformed, i, h.Indexes[k-1])
		}
	}
	return nil
}

// decodeHaves decodes a body whose size passed checkBodyLen; decodeBody
// validates the result.
func decodeHaves(body []byte) (*Haves, error) {
	if len(body)%4 != 0 {
		return nil, fmt.Errorf("%w: haves body of %d bytes is not whole indexes", ErrMalformed, len(body))
	}
	h := &Haves{Indexes: make([]uint32, len(body)/4)}
	for k := range h.Indexes {
		h.Indexes[k] = binary.BigEndian.Uint32(body[4*k:])
	}
	return h, nil
}

// AppendHaves appends to b the frames that announce indexes (strictly
// ascending, each below MaxBitfield): Haves frames of up to MaxHaves indexes
// each when batch is set, else one Have frame per index, for a peer that
// did not set FlagHaveBatch. It returns the extended buffer and the number
// of frames appended, so the caller can send them all in one Write; on an
// error it appends nothing.
func AppendHaves(b []byte, indexes []uint32, batch bool) ([]byte, int, error) {
	for k := 0; k < len(indexes); k += MaxHaves {
		part := indexes[k:min(k+MaxHaves, len(indexes))]
		if err := (&Haves{Indexes: part}).validate(); err != nil {
			return b, 0, err
		}
		if k > 0 && part[0] <= indexes[k-1] {
			return b, 0, fmt.Errorf("%w: haves index %d follows %d: not strictly ascending", ErrMalformed, part[0], indexes[k-1])
		}
	}
	frames := 0
	for len(indexes) > 0 {
		if batch {
			n := min(len(indexes), MaxHaves)
			h := Haves{Indexes: indexes[:n]}
			b = binary.BigEndian.AppendUint32(b, uint32(1+h.bodyLen()))
			b = h.appendBody(append(b, byte(TypeHaves)))
			indexes = indexes[n:]
		} else {
			b = binary.BigEndian.AppendUint32(b, 5)
			b = binary.BigEndian.AppendUint32(append(b, byte(TypeHave)), indexes[0])
			indexes = indexes[1:]
		}
		frames++
	}
	return b, frames, nil
}

// DontHave withdraws an earlier Have or bitfield bit (in the spirit of
// BitTorrent's BEP 54 lt_donthave): the sender no longer holds chunk Index
// (evicted, found corrupt, purged), so the receiver should not request it.
// A later Have announces it again.
type DontHave struct{ Index uint32 }

// Type implements Message.
func (*DontHave) Type() Type                   { return TypeDontHave }
func (*DontHave) bodyLen() int                 { return 4 }
func (d *DontHave) appendBody(b []byte) []byte { return binary.BigEndian.AppendUint32(b, d.Index) }
func (*DontHave) validate() error              { return nil }

// BitfieldUpdate replaces everything the receiver knew of the sender's
// chunks, for when many Haves would be longer (e.g. after a cache load).
type BitfieldUpdate struct {
	// Bits is the sender's full bitfield; nil encodes as empty.
	Bits *Bitfield
}

// Type implements Message.
func (*BitfieldUpdate) Type() Type                   { return TypeBitfield }
func (u *BitfieldUpdate) bodyLen() int               { return bitfieldLen(u.Bits) }
func (u *BitfieldUpdate) appendBody(b []byte) []byte { return appendBitfield(b, u.Bits) }
func (*BitfieldUpdate) validate() error              { return nil }

// rangeLen is the body size of a chunk range: index, offset, length.
const rangeLen = 12

// chunkRange is the part Request, Cancel and Reject share.
type chunkRange struct{ Index, Offset, Length uint32 }

func decodeRange(b []byte) chunkRange {
	return chunkRange{
		Index:  binary.BigEndian.Uint32(b),
		Offset: binary.BigEndian.Uint32(b[4:]),
		Length: binary.BigEndian.Uint32(b[8:]),
	}
}

func (r chunkRange) append(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, r.Index)
	b = binary.BigEndian.AppendUint32(b, r.Offset)
	return binary.BigEndian.AppendUint32(b, r.Length)
}

func (r chunkRange) validate(t Type) error {
	if r.Length == 0 || uint64(r.Offset)+uint64(r.Length) > MaxPayload {
		return fmt.Errorf("%w: %s of chunk %d: range %d+%d outside 1..%d bytes", ErrMalformed, t, r.Index, r.Offset, r.Length, MaxPayload)
	}
	return nil
}

// Request asks for Length bytes at Offset of chunk Index (usually a whole chunk).
type Request struct{ Index, Offset, Length uint32 }

// Cancel withdraws an earlier Request with the same fields (e.g. in end-game
// once another peer delivered the chunk).
type Cancel struct{ Index, Offset, Length uint32 }

// Type implements Message.
func (*Request) Type() Type                   { return TypeRequest }
func (*Request) bodyLen() int                 { return rangeLen }
func (r *Request) appendBody(b []byte) []byte { return chunkRange(*r).append(b) }
func (r *Request) validate() error            { return chunkRange(*r).validate(TypeRequest) }

// Type implements Message.
func (*Cancel) Type() Type                   { return TypeCancel }
func (*Cancel) bodyLen() int                 { return rangeLen }
func (c *Cancel) appendBody(b []byte) []byte { return chunkRange(*c).append(b) }
func (c *Cancel) validate() error            { return chunkRange(*c).validate(TypeCancel) }

// Reason says why a request was refused.
type Reason uint8

// Reject reasons. Unknown values are carried unchanged and read as unspecified.
const (
	ReasonUnspecified Reason = iota
	ReasonNotHave            // the sender does not have the chunk (any more)
	ReasonChoked             // the requester is choked
	ReasonBusy               // too many requests queued; retry later or elsewhere
	ReasonBadRange           // the range is outside the chunk
)

// String names the reason for logs.
func (r Reason) String() string {
	switch r {
	case ReasonUnspecified:
		return "unspecified"
	case ReasonNotHave:
		return "not-have"
	case ReasonChoked:
		return "choked"
	case ReasonBusy:
		return "busy"
	case ReasonBadRange:
		return "bad-range"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Reject refuses a Request, echoing its fields, so the requester can re-plan
// at once instead of waiting for a timeout.
type Reject struct {
	Index, Offset, Length uint32
	Reason                Reason
}

// Type implements Message.
func (*Reject) Type() Type   { return TypeReject }
func (*Reject) bodyLen() int { return rangeLen + 1 }
func (r *Reject) appendBody(b []byte) []byte {
	return append(chunkRange{r.Index, r.Offset, r.Length}.append(b), byte(r.Reason))
}
func (r *Reject) validate() error {
	return chunkRange{r.Index, r.Offset, r.Length}.validate(TypeReject)
}

// dataHeaderLen is the body size of Data before the payload.
const dataHeaderLen = 8

// Data carries the bytes of a Request: Payload is at Offset of chunk Index.
// The receiver verifies it against the chunk hash before using it.
type Data struct {
	Index, Offset uint32
	Payload       []byte
}

// Type implements Message.
func (*Data) Type() Type     { return TypeData }
func (d *Data) bodyLen() int { return dataHeaderLen + len(d.Payload) }
func (d *Data) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, d.Index)
	b = binary.BigEndian.AppendUint32(b, d.Offset)
	return append(b, d.Payload...)
}
func (d *Data) validate() error {
	if len(d.Payload) == 0 || uint64(d.Offset)+uint64(len(d.Payload)) > MaxPayload {
		return fmt.Errorf("%w: data of chunk %d: range %d+%d outside 1..%d bytes", ErrMalformed, d.Index, d.Offset, len(d.Payload), MaxPayload)
	}
	return nil
}

// Token presents the sender's access token: right after a handshake with
// FlagToken, or later on the stream to refresh it. Empty means none.
type Token struct{ Token string }

// Type implements Message.
func (*Token) Type() Type                   { return TypeToken }
func (t *Token) bodyLen() int               { return len(t.Token) }
func (t *Token) appendBody(b []byte) []byte { return append(b, t.Token...) }
func (t *Token) validate() error {
	if len(t.Token) > MaxToken {
		return fmt.Errorf("%w: token of %d bytes, max %d", ErrMalformed, len(t.Token), MaxToken)
	}
	for i := 0; i < len(t.Token); i++ {
		if c := t.Token[i]; c <= 0x20 || c > 0x7e {
			return fmt.Errorf("%w: token byte %d (0x%02x) is not printable ASCII", ErrMalformed, i, c)
		}
	}
	return nil
}

// Compile-time checks that every message type implements Message.
var (
	_ Message = (*Handshake)(nil)
	_ Message = (*KeepAlive)(nil)
	_ Message = (*Choke)(nil)
	_ Message = (*Unchoke)(nil)
	_ Message = (*Interested)(nil)
	_ Message = (*NotInterested)(nil)
	_ Message = (*Have)(nil)
	_ Message = (*BitfieldUpdate)(nil)
	_ Message = (*Request)(nil)
	_ Message = (*Cancel)(nil)
	_ Message = (*Reject)(nil)
	_ Message = (*Data)(nil)
	_ Message = (*DontHave)(nil)
	_ Message = (*Token)(nil)
	_ Message = (*Haves)(nil)
)
