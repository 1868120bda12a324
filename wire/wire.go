// Package wire is Shoal's peer wire protocol: the messages two peers exchange
// on the one libp2p stream they open per content swarm, and their encoding.
// It is pure encode/decode over io.Reader and io.Writer (no networking, no
// goroutines), so the session, the simulator and the fuzzers share it. It
// imports only core; swarm, netx and agent import it.
//
// # Frame format (this is the specification)
//
// Every message is one frame; all integers are big-endian:
//
//	length  uint32   number of bytes that follow (type + body), 1..MaxFrame
//	type    uint8    one of the Type constants below
//	body    length-1 bytes, laid out per type
//
// Bodies:
//
//	Handshake      (1)  magic "SHOL" | version uint16 (=Version) | flags uint8 |
//	                    content ID [32]byte | client length uint8 (<= MaxClient) |
//	                    client (UTF-8) | bitfield
//	KeepAlive      (2)  empty
//	Choke          (3)  empty
//	Unchoke        (4)  empty
//	Interested     (5)  empty
//	NotInterested  (6)  empty
//	Have           (7)  index uint32
//	BitfieldUpdate (8)  bitfield
//	Request        (9)  index uint32 | offset uint32 | length uint32
//	Cancel        (10)  index uint32 | offset uint32 | length uint32
//	Reject        (11)  index uint32 | offset uint32 | length uint32 | reason uint8
//	Data          (12)  index uint32 | offset uint32 | payload (the rest, >= 1 byte)
//	DontHave      (13)  index uint32
//	Token         (14)  access token (printed form, URL-safe base64; 0..MaxToken bytes)
//	Haves         (15)  index uint32 × n, 1 <= n <= MaxHaves, strictly ascending,
//	                    each < MaxBitfield (n is the body length / 4)
//
// A bitfield is: bit count uint32 (<= MaxBitfield) | form uint8 | bits, in
// one of two forms, whichever is shorter (raw when they tie):
//
//	raw  (0)  ceil(count/8) bytes, bit i in byte i/8 under mask 0x80>>(i%8);
//	          the spare bits of the last byte are zero
//	runs (1)  the lengths of the runs of equal bits, as minimal uvarints:
//	          clear bits first (this run alone may be 0), then set, then
//	          clear, ..., summing to count
//
// A peer holding a window of a content (a viewer's minutes of one
// rendition), nothing, or everything sends a few bytes instead of one bit
// per chunk (version 1 sent the raw form only). Chunk indexes are global over the content's chunks, in manifest file
// order; the session maps them to (file, chunk).
//
// A request range is offset..offset+length within one chunk: length >= 1 and
// offset+length <= core.MaxChunkSize. A Data payload obeys the same bound.
//
// Each side sends Handshake first and exactly once; a receiver whose
// content ID or bit count does not match the manifest closes the stream (that
// check belongs to the session, which knows the manifest). Flags bits that
// this version does not define are carried unchanged and must be ignored.
//
// Access tokens. A handshake with FlagToken is followed by exactly one Token
// frame (empty when the sender holds none). The dialer's handshake with
// FlagToken carries an empty bitfield: it withholds its chunks until it has
// checked the acceptor's token. The acceptor checks the dialer's token (a
// stream it refuses is reset and gets nothing), then answers with its
// Handshake and bitfield, and its Token when it sets FlagToken; the dialer
// checks that token (resetting the stream if it refuses it) and then sends
// its bitfield as a BitfieldUpdate, the first frame after its Token. A Token
// frame later on an open stream is a refresh: it replaces the sender's token
// once it verifies.
//
// Batched HAVEs. A Haves frame says what n Have frames would, in one frame,
// so a burst of chunks (a segment arriving) costs each neighbour one frame to
// read instead of one per chunk. It is sent only to a peer whose handshake
// set FlagHaveBatch; a peer without it gets single Have frames, as a peer of
// this version that predates Haves would reject the type and close the
// stream.
//
// Decoding is strict and canonical: a frame is accepted only if re-encoding
// the decoded message yields the same bytes, so every byte on the wire means
// exactly one thing. Unknown versions fail with ErrVersion, unknown types with
// ErrUnknownType, lengths beyond the limits with ErrFrameTooLarge, and
// anything else that does not fit the layout with ErrMalformed.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shoal-cdn/shoal/core"
)

// Version is the protocol version carried in the handshake. A peer speaking
// another version is refused with ErrVersion; a new version gets a new
// ProtocolID too, so libp2p can negotiate before any frame is sent.
const Version = 2

// ProtocolID is the libp2p protocol name for this version of the stream.
const ProtocolID = "/shoal/wire/2"

// Magic opens every handshake body, so a stream that is not Shoal's fails
// fast with ErrVersion instead of being misparsed.
const Magic = "SHOL"

// Limits. They bound every allocation a decoder makes from peer input.
const (
	// MaxPayload is the largest Data payload: one whole chunk of the largest size.
	MaxPayload = core.MaxChunkSize
	// MaxFrame is the largest value of a frame's length field: a Data frame
	// carrying MaxPayload bytes.
	MaxFrame = 1 + dataHeaderLen + MaxPayload
	// MaxBitfield is the largest bit count of a bitfield (2 MiB of bits),
	// and so the most chunks one content may have.
	MaxBitfield = 1 << 24
	// MaxClient is the longest client string in a handshake, in bytes.
	MaxClient = 64
	// MaxToken is the longest access token in a Token frame, in bytes
	// (a printed token of package token is at most 1366).
	MaxToken = 2048
	// MaxHaves is the most chunk indexes one Haves frame carries (a 2 KiB
	// body); a sender splits a longer batch into several frames.
	MaxHaves = 512
)

// Sentinel errors; decoders wrap them with detail, so test with errors.Is.
var (
	// ErrFrameTooLarge: a length field beyond the reader's limit.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrMalformed: a frame that does not match its type's layout.
	ErrMalformed = errors.New("wire: malformed frame")
	// ErrUnknownType: a type byte this version does not define.
	ErrUnknownType = errors.New("wire: unknown message type")
	// ErrVersion: a handshake with the wrong magic or an unsupported version.
	ErrVersion = errors.New("wire: unsupported protocol version")
)

// Type is a frame's type byte.
type Type uint8

// Message types. Zero is unused so an all-zero frame is rejected.
const (
	TypeHandshake Type = iota + 1
	TypeKeepAlive
	TypeChoke
	TypeUnchoke
	TypeInterested
	TypeNotInterested
	TypeHave
	TypeBitfield
	TypeRequest
	TypeCancel
	TypeReject
	TypeData
	TypeDontHave
	TypeToken
	TypeHaves
	typeEnd // first undefined type
)

var typeNames = [...]string{
	TypeHandshake:     "handshake",
	TypeKeepAlive:     "keep-alive",
	TypeChoke:         "choke",
	TypeUnchoke:       "unchoke",
	TypeInterested:    "interested",
	TypeNotInterested: "not-interested",
	TypeHave:          "have",
	TypeBitfield:      "bitfield",
	TypeRequest:       "request",
	TypeCancel:        "cancel",
	TypeReject:        "reject",
	TypeData:          "data",
	TypeDontHave:      "dont-have",
	TypeToken:         "token",
	TypeHaves:         "haves",
}

// String names the type for logs and errors.
func (t Type) String() string {
	if t > 0 && t < typeEnd {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Message is one protocol message. The concrete types are the pointer types
// of this package (*Handshake, *Have, *Data, ...); the interface is sealed.
type Message interface {
	// Type is the frame type the message is sent as.
	Type() Type
	// bodyLen is the encoded body size.
	bodyLen() int
	// appendBody appends the encoded body; the message must be valid.
	appendBody(b []byte) []byte
	// validate reports what an encoder must refuse (and a decoder reject).
	validate() error
}

const headerLen = 5 // length uint32 + type uint8

// Marshal encodes m as one complete frame, length prefix included.
// It refuses a message that a decoder would reject.
func Marshal(m Message) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil message", ErrMalformed)
	}
	return AppendFrame(make([]byte, 0, headerLen+m.bodyLen()), m)
}

// AppendFrame appends m to b as one complete frame, length prefix included,
// so a writer can gather several frames into one Write. It refuses (and
// appends nothing for) a message that a decoder would reject.
func AppendFrame(b []byte, m Message) ([]byte, error) {
	if m == nil {
		return b, fmt.Errorf("%w: nil message", ErrMalformed)
	}
	if err := m.validate(); err != nil {
		return b, err
	}
	n := m.bodyLen()
	b = binary.BigEndian.AppendUint32(b, uint32(1+n))
	b = append(b, byte(m.Type()))
	return m.appendBody(b), nil
}

// Unmarshal decodes exactly one complete frame, length prefix included.
// A Data payload aliases frame; everything else is copied.
func Unmarshal(frame []byte) (Message, error) {
	if len(frame) >= 4 {
		if n := binary.BigEndian.Uint32(frame); n > MaxFrame {
			return nil, fmt.Errorf("%w: length %d exceeds %d", ErrFrameTooLarge, n, MaxFrame)
		}
	}
	if len(frame) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes is shorter than a frame header", ErrMalformed, len(frame))
	}
	n := binary.BigEndian.Uint32(frame)
	if int64(n) != int64(len(frame)-4) {
		return nil, fmt.Errorf("%w: length field says %d bytes, %d follow", ErrMalformed, n, len(frame)-4)
	}
	t := Type(frame[4])
	body := frame[headerLen:]
	if err := checkBodyLen(t, len(body)); err != nil {
		return nil, err
	}
	return decodeBody(t, body)
}

// bodyBounds gives the smallest and largest body a type may have.
func bodyBounds(t Type) (lo, hi int, ok bool) {
	switch t {
	case TypeKeepAlive, TypeChoke, TypeUnchoke, TypeInterested, TypeNotInterested:
		return 0, 0, true
	case TypeHave, TypeDontHave:
		return 4, 4, true
	case TypeRequest, TypeCancel:
		return rangeLen, rangeLen, true
	case TypeReject:
		return rangeLen + 1, rangeLen + 1, true
	case TypeData:
		return dataHeaderLen + 1, dataHeaderLen + MaxPayload, true
	case TypeBitfield:
		return 5, 5 + MaxBitfield/8, true
	case TypeToken:
		return 0, MaxToken, true
	case TypeHaves:
		return 4, 4 * MaxHaves, true
	case TypeHandshake:
		// At least a version 1 handshake with an empty bitfield, so a peer of
		// that version is told ErrVersion.
		return handshakeFixedLen + 4, handshakeFixedLen + MaxClient + 5 + MaxBitfield/8, true
	}
	return 0, 0, false
}

// checkBodyLen rejects a body size its type can never have, before the
// body is read or allocated.
func checkBodyLen(t Type, n int) error {
	lo, hi, ok := bodyBounds(t)
	if !ok {
		return fmt.Errorf("%w: %d (%d-byte body)", ErrUnknownType, uint8(t), n)
	}
	if n < lo || n > hi {
		if lo == hi {
			return fmt.Errorf("%w: %s body is %d bytes, want %d", ErrMalformed, t, n, lo)
		}
		return fmt.Errorf("%w: %s body is %d bytes, want %d..%d", ErrMalformed, t, n, lo, hi)
	}
	return nil
}

// decodeBody decodes a body whose size already passed checkBodyLen.
func decodeBody(t Type, body []byte) (Message, error) {
	var m Message
	var err error
	switch t {
	case TypeKeepAlive:
		m = &KeepAlive{}
	case TypeChoke:
		m = &Choke{}
	case TypeUnchoke:
		m = &Unchoke{}
	case TypeInterested:
		m = &Interested{}
	case TypeNotInterested:
		m = &NotInterested{}
	case TypeHave:
		m = &Have{Index: binary.BigEndian.Uint32(body)}
	case TypeDontHave:
		m = &DontHave{Index: binary.BigEndian.Uint32(body)}
	case TypeRequest:
		r := Request(decodeRange(body))
		m = &r
	case TypeCancel:
		c := Cancel(decodeRange(body))
		m = &c
	case TypeReject:
		r := decodeRange(body)
		m = &Reject{Index: r.Index, Offset: r.Offset, Length: r.Length, Reason: Reason(body[rangeLen])}
	case TypeData:
		m = &Data{
			Index:   binary.BigEndian.Uint32(body),
			Offset:  binary.BigEndian.Uint32(body[4:]),
			Payload: body[dataHeaderLen:],
		}
	case TypeBitfield:
		var bf *Bitfield
		bf, err = decodeBitfield(body)
		m = &BitfieldUpdate{Bits: bf}
	case TypeHandshake:
		m, err = decodeHandshake(body)
	case TypeToken:
		m = &Token{Token: string(body)}
	case TypeHaves:
		m, err = decodeHaves(body)
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnknownType, uint8(t))
	}
	if err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}
