package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// inlinePayload is the largest Data payload WriteMessage copies into the
// header's buffer to send one Write; larger ones go out as header + payload
// (writev on a net.Conn) so chunk bytes are never copied.
const inlinePayload = 4 << 10

// WriteMessage writes m to w as one frame: one Write call, except for a Data
// payload over a few KiB, which is written after its header without copying
// (one writev when w is a net.Conn). It refuses an invalid message before
// writing anything. Concurrent writers must serialise calls themselves.
func WriteMessage(w io.Writer, m Message) error {
	d, ok := m.(*Data)
	if !ok || len(d.Payload) <= inlinePayload {
		b, err := Marshal(m)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("wire: writing %s frame: %w", m.Type(), err)
		}
		return nil
	}
	if err := d.validate(); err != nil {
		return err
	}
	var hdr [headerLen + dataHeaderLen]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(1+dataHeaderLen+len(d.Payload)))
	hdr[4] = byte(TypeData)
	binary.BigEndian.PutUint32(hdr[5:], d.Index)
	binary.BigEndian.PutUint32(hdr[9:], d.Offset)
	bufs := net.Buffers{hdr[:], d.Payload}
	if _, err := bufs.WriteTo(w); err != nil {
		return fmt.Errorf("wire: writing data frame of chunk %d: %w", d.Index, err)
	}
	return nil
}

// smallFrame is the largest frame Next reads in one piece into scratch
// before looking at its type: every control message, and Data payloads
// small enough that one extra copy costs less than two more reads.
const smallFrame = 1 + dataHeaderLen + inlinePayload

// scratchKeep is the largest body buffer a Reader keeps between frames; a
// rare big handshake or bitfield should not pin megabytes per stream.
const scratchKeep = 64 << 10

// Reader decodes frames from a stream. It reads exactly one frame per Next
// and never ahead, so the stream may be handed on between frames. It is not
// safe for concurrent use.
//
// Every message Next returns is the caller's to keep: a Data payload is a
// fresh slice of exactly its length (or one from Alloc) that the Reader never
// touches again, so it can be verified and stored without a copy; bitfields
// and strings are copied out of the Reader's scratch buffer.
type Reader struct {
	// Alloc, if set, supplies Data payload buffers for payloads too big to
	// be read with their header (over a few KiB), e.g. from the chunk store's
	// pool, so the reader neither allocates nor zeroes one per chunk. Next
	// uses the first n bytes of what it returns (a fresh slice if its
	// capacity is short) and hands them on as Data.Payload; the caller owns
	// them from then on.
	Alloc func(n int) []byte

	r       io.Reader
	max     int
	hdr     [headerLen + dataHeaderLen]byte
	scratch []byte // body buffer for frames other than Data; see scratchKeep
}

// NewReader returns a Reader that refuses frames whose length field exceeds
// maxFrame (at most MaxFrame; zero or less means MaxFrame). A smaller limit
// bounds memory per stream; it must leave room for the largest Data frame and
// handshake the session expects.
func NewReader(r io.Reader, maxFrame int) *Reader {
	if maxFrame <= 0 || maxFrame > MaxFrame {
		maxFrame = MaxFrame
	}
	return &Reader{r: r, max: maxFrame}
}

// Next reads and decodes the next frame. It returns io.EOF only when the
// stream ends cleanly between frames, and an error matching
// io.ErrUnexpectedEOF when it ends inside one.
//
// No buffer bigger than a few KiB is sized from a length before that length
// is checked against the limit and the frame type's bounds. After ErrFrameTooLarge or an I/O
// error the stream is out of step and must be closed. After any other
// decoding error (ErrUnknownType, ErrMalformed, ErrVersion) the whole frame
// has been consumed, so a caller that chooses to may skip it and go on.
func (r *Reader) Next() (Message, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:4]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("wire: reading frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(r.hdr[:])
	if n > uint32(r.max) {
		return nil, fmt.Errorf("%w: length %d exceeds %d", ErrFrameTooLarge, n, r.max)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: zero length leaves no room for the type byte", ErrMalformed)
	}
	if n <= smallFrame {
		return r.readSmall(int(n))
	}
	if _, err := io.ReadFull(r.r, r.hdr[4:headerLen]); err != nil {
		return nil, bodyErr(0, err)
	}
	t, size := Type(r.hdr[4]), int(n-1)
	if err := checkBodyLen(t, size); err != nil {
		return nil, r.skip(t, size, err)
	}
	if t == TypeData {
		return r.readData(size)
	}
	body := r.body(size)
	if _, err := io.ReadFull(r.r, body); err != nil {
		return nil, bodyErr(t, err)
	}
	return decodeBody(t, body)
}

// readSmall reads a whole small frame (type and body) with one ReadFull, so
// control messages cost two reads however the stream is buffered.
func (r *Reader) readSmall(n int) (Message, error) {
	buf := r.body(n)
	if _, err := io.ReadFull(r.r, buf); err != nil {
		return nil, bodyErr(0, err)
	}
	t, body := Type(buf[0]), buf[1:]
	if err := checkBodyLen(t, len(body)); err != nil {
		return nil, err
	}
	m, err := decodeBody(t, body)
	if d, ok := m.(*Data); ok {
		// The payload must not alias the scratch buffer the next frame reuses.
		d.Payload = bytes.Clone(d.Payload)
	}
	return m, err
}

// body returns a scratch buffer of n bytes, valid until the next call.
func (r *Reader) body(n int) []byte {
	if cap(r.scratch) < n {
		r.scratch = make([]byte, max(n, smallFrame))
	}
	b := r.scratch[:n]
	if cap(r.scratch) > scratchKeep {
		r.scratch = nil
	}
	return b
}

// readData reads a Data body straight into a payload buffer of exactly its
// size, allocated only after the range is known to be valid.
func (r *Reader) readData(size int) (Message, error) {
	h := r.hdr[headerLen:]
	if _, err := io.ReadFull(r.r, h); err != nil {
		return nil, bodyErr(TypeData, err)
	}
	d := &Data{
		Index:  binary.BigEndian.Uint32(h),
		Offset: binary.BigEndian.Uint32(h[4:]),
	}
	plen := size - dataHeaderLen
	if uint64(d.Offset)+uint64(plen) > MaxPayload {
		err := fmt.Errorf("%w: data of chunk %d: range %d+%d outside 1..%d bytes", ErrMalformed, d.Index, d.Offset, plen, MaxPayload)
		return nil, r.skip(TypeData, plen, err)
	}
	var p []byte
	if r.Alloc != nil {
		p = r.Alloc(plen)
	}
	if cap(p) < plen {
		p = make([]byte, plen)
	}
	d.Payload = p[:plen]
	if _, err := io.ReadFull(r.r, d.Payload); err != nil {
		return nil, bodyErr(TypeData, err)
	}
	return d, nil
}

// skip discards a rejected body (at most the frame limit) so the stream
// stays in step, and returns why it was rejected.
func (r *Reader) skip(t Type, size int, why error) error {
	if _, err := io.CopyN(io.Discard, r.r, int64(size)); err != nil {
		return bodyErr(t, err)
	}
	return why
}

// bodyErr reports a stream that failed inside a frame; a clean EOF there
// is unexpected.
func bodyErr(t Type, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if t == 0 { // type not read yet
		return fmt.Errorf("wire: reading frame: %w", err)
	}
	return fmt.Errorf("wire: reading %s frame body: %w", t, err)
}
