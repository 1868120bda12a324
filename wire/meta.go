package wire

// The meta protocol lets a peer ask another for a content's signed manifest,
// one file's hash layer or a paged manifest's root page, so a newcomer can
// join a swarm while the origin is down. It runs on its own libp2p stream,
// one request and one response per stream. Every body is self-verifying (a
// content ID is the SHA-256 of the manifest bytes; a hash layer must
// reproduce a Merkle root the manifest signs; a root page must hash to a
// page hash the manifest signs), so the codec only frames them and the
// caller verifies.
//
// Request (MetaRequestLen bytes, then the token if any):
//
//	kind    uint8     MetaManifest, MetaHashLayer or MetaRootPage, | MetaTokenFlag when a token follows
//	key     [32]byte  the content ID (manifest), the file's Merkle root (hash layer)
//	                  or the page's SHA-256 (root page)
//	token   with MetaTokenFlag only: length uint16 (1..MaxToken) | the access
//	        token (printable ASCII), for peers that serve only token holders
//
// Response:
//
//	status  uint8     MetaOK, MetaNotFound, MetaBusy or MetaRefused
//	length  uint32    body size, big-endian; zero unless status is MetaOK
//	body    length bytes
//
// Decoding is strict like the data protocol's: an unknown kind or status, or
// a body on a non-OK response, fails with ErrMalformed; a length beyond the
// reader's limit with ErrFrameTooLarge, before any of the body is read; and
// input that ends early with an error matching both ErrMalformed and
// io.ErrUnexpectedEOF. The decoders read exactly one message and never ahead.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"

	"github.com/shoal-cdn/shoal/core"
)

// MetaProtocolID is the libp2p protocol name of the meta stream.
const MetaProtocolID = "/shoal/meta/1"

// Sizes of the fixed parts of meta messages.
const (
	// MetaRequestLen is the encoded size of every meta request.
	MetaRequestLen = 1 + core.HashSize
	// metaResponseHeaderLen is status + length.
	metaResponseHeaderLen = 1 + 4
	// metaReadStep is the most a response decoder allocates before the
	// body's bytes arrive: a peer that announces a large body and then
	// stalls pins no more than this.
	metaReadStep = 64 << 10
)

// MetaKind says what a meta request asks for. Zero is unused so an all-zero
// request is rejected.
type MetaKind uint8

// Meta request kinds.
const (
	// MetaManifest asks for the signed manifest whose SHA-256 is the key
	// (a core.ContentID's bytes).
	MetaManifest MetaKind = 1
	// MetaHashLayer asks for the hash layer (the file's chunk hashes) whose
	// Merkle root is the key.
	MetaHashLayer MetaKind = 2
	// MetaRootPage asks for the root page (of a paged manifest) whose
	// SHA-256 is the key.
	MetaRootPage MetaKind = 3
)

// String names the kind for logs and errors.
func (k MetaKind) String() string {
	switch k {
	case MetaManifest:
		return "manifest"
	case MetaHashLayer:
		return "hash layer"
	case MetaRootPage:
		return "root page"
	}
	return fmt.Sprintf("meta kind(%d)", uint8(k))
}

func (k MetaKind) valid() bool { return k >= MetaManifest && k <= MetaRootPage }

// MetaStatus is a meta response's status byte. Zero is unused.
type MetaStatus uint8

// Meta response statuses.
const (
	// MetaOK: the body is what was asked for (as far as the sender knows;
	// the caller verifies it).
	MetaOK MetaStatus = 1
	// MetaNotFound: the sender does not have it.
	MetaNotFound MetaStatus = 2
	// MetaBusy: the sender is serving too many meta requests; try later or
	// elsewhere.
	MetaBusy MetaStatus = 3
	// MetaRefused: the sender serves only holders of a valid access token,
	// and the request carried none that admits it.
	MetaRefused MetaStatus = 4
)

// String names the status for logs and errors.
func (s MetaStatus) String() string {
	switch s {
	case MetaOK:
		return "ok"
	case MetaNotFound:
		return "not found"
	case MetaBusy:
		return "busy"
	case MetaRefused:
		return "refused"
	}
	return fmt.Sprintf("meta status(%d)", uint8(s))
}

func (s MetaStatus) valid() bool { return s >= MetaOK && s <= MetaRefused }

// MetaTokenFlag is set in a meta request's kind byte when an access token
// follows the key.
const MetaTokenFlag = 0x80

// MetaRequest asks for one manifest or hash layer.
type MetaRequest struct {
	Kind MetaKind
	// Key is the content ID's bytes for MetaManifest (core.Hash(id)), the
	// file's Merkle root for MetaHashLayer.
	Key core.Hash
	// Token is the asker's access token; empty: none.
	Token string
}

// MetaResponse answers a MetaRequest. Body is empty unless Status is MetaOK.
type MetaResponse struct {
	Status MetaStatus
	Body   []byte
}

// WriteMetaRequest writes req in one Write call. It refuses an unknown kind
// before writing anything.
func WriteMetaRequest(w io.Writer, req MetaRequest) error {
	if !req.Kind.valid() {
		return fmt.Errorf("%w: meta request of unknown %v", ErrMalformed, req.Kind)
	}
	if err := (&Token{Token: req.Token}).validate(); err != nil {
		return fmt.Errorf("meta request: %w", err)
	}
	b := make([]byte, MetaRequestLen, MetaRequestLen+2+len(req.Token))
	b[0] = byte(req.Kind)
	copy(b[1:], req.Key[:])
	if req.Token != "" {
		b[0] |= MetaTokenFlag
		b = binary.BigEndian.AppendUint16(b, uint16(len(req.Token)))
		b = append(b, req.Token...)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("wire: writing %v request %s: %w", req.Kind, req.Key.Short(), err)
	}
	return nil
}

// ReadMetaRequest reads exactly one request from r.
func ReadMetaRequest(r io.Reader) (MetaRequest, error) {
	var b [MetaRequestLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return MetaRequest{}, readErr("meta request", err)
	}
	req := MetaRequest{Kind: MetaKind(b[0] &^ MetaTokenFlag)}
	if !req.Kind.valid() {
		return MetaRequest{}, fmt.Errorf("%w: meta request of unknown %v", ErrMalformed, req.Kind)
	}
	copy(req.Key[:], b[1:])
	if b[0]&MetaTokenFlag == 0 {
		return req, nil
	}
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return MetaRequest{}, readErr("meta request token length", err)
	}
	l := int(binary.BigEndian.Uint16(n[:]))
	if l == 0 || l > MaxToken {
		return MetaRequest{}, fmt.Errorf("%w: meta request token of %d bytes, want 1..%d", ErrMalformed, l, MaxToken)
	}
	tok := make([]byte, l)
	if _, err := io.ReadFull(r, tok); err != nil {
		return MetaRequest{}, readErr("meta request token", err)
	}
	req.Token = string(tok)
	if err := (&Token{Token: req.Token}).validate(); err != nil {
		return MetaRequest{}, fmt.Errorf("meta request: %w", err)
	}
	return req, nil
}

// WriteMetaResponse writes resp: the header, then the body without copying
// it. It refuses an unknown status, a body on a non-OK status and a body
// longer than a uint32 can say, before writing anything.
func WriteMetaResponse(w io.Writer, resp MetaResponse) error {
	if !resp.Status.valid() {
		return fmt.Errorf("%w: meta response with unknown %v", ErrMalformed, resp.Status)
	}
	if resp.Status != MetaOK && len(resp.Body) != 0 {
		return fmt.Errorf("%w: %q meta response with a %d-byte body", ErrMalformed, resp.Status, len(resp.Body))
	}
	if uint64(len(resp.Body)) > math.MaxUint32 {
		return fmt.Errorf("%w: meta response body of %d bytes", ErrFrameTooLarge, len(resp.Body))
	}
	var hdr [metaResponseHeaderLen]byte
	hdr[0] = byte(resp.Status)
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(resp.Body)))
	bufs := net.Buffers{hdr[:]}
	if len(resp.Body) > 0 {
		bufs = append(bufs, resp.Body)
	}
	if _, err := bufs.WriteTo(w); err != nil {
		return fmt.Errorf("wire: writing %q meta response (%d bytes): %w", resp.Status, len(resp.Body), err)
	}
	return nil
}

// ReadMetaResponse reads exactly one response from r, refusing a body longer
// than maxBody (zero or less allows only empty bodies) with ErrFrameTooLarge
// before reading any of it. Memory grows with the bytes that actually
// arrive, not with the announced length.
func ReadMetaResponse(r io.Reader, maxBody int) (MetaResponse, error) {
	var hdr [metaResponseHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return MetaResponse{}, readErr("meta response header", err)
	}
	status, n := MetaStatus(hdr[0]), binary.BigEndian.Uint32(hdr[1:])
	if !status.valid() {
		return MetaResponse{}, fmt.Errorf("%w: meta response with unknown %v", ErrMalformed, status)
	}
	if status != MetaOK && n != 0 {
		return MetaResponse{}, fmt.Errorf("%w: %q meta response announces a %d-byte body", ErrMalformed, status, n)
	}
	if int64(n) > int64(max(maxBody, 0)) {
		return MetaResponse{}, fmt.Errorf("%w: meta response body of %d bytes exceeds %d", ErrFrameTooLarge, n, max(maxBody, 0))
	}
	resp := MetaResponse{Status: status}
	if n == 0 {
		return resp, nil
	}
	body, err := readGrowing(r, int(n))
	if err != nil {
		return MetaResponse{}, readErr(fmt.Sprintf("%d-byte meta response body", n), err)
	}
	resp.Body = body
	return resp, nil
}

// readGrowing reads exactly n > 0 bytes, doubling its buffer from
// metaReadStep as bytes arrive, so the result has capacity n.
func readGrowing(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, min(n, metaReadStep))
	have := 0
	for {
		k, err := io.ReadFull(r, b[have:])
		have += k
		if err != nil {
			return nil, err
		}
		if have == n {
			return b, nil
		}
		grown := make([]byte, min(n, 2*len(b)))
		copy(grown, b)
		b = grown
	}
}

// readErr wraps a read failure: input that ends early is malformed (and
// matches io.ErrUnexpectedEOF); anything else is the transport's error.
func readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s cut short: %w", ErrMalformed, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("wire: reading %s: %w", what, err)
}
