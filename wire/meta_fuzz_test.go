package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzReadMetaRequest checks that the request decoder is canonical and
// stable: an accepted request consumed exactly its bytes (MetaRequestLen and its token's),
// re-encodes to exactly them and decodes again to the same request; every
// rejection is one of the package's sentinels.
func FuzzReadMetaRequest(f *testing.F) {
	for _, req := range []MetaRequest{{Kind: MetaManifest, Key: metaKey(1)}, {Kind: MetaHashLayer}, {Kind: MetaRootPage, Key: metaKey(3)}, {Kind: MetaManifest, Token: "AQRrZXk"}} {
		var buf bytes.Buffer
		if err := WriteMetaRequest(&buf, req); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		f.Add(append(buf.Bytes(), 0xff))
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add(make([]byte, MetaRequestLen))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		req, err := ReadMetaRequest(r)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v matches no sentinel", err)
			}
			return
		}
		used := in[:len(in)-r.Len()]
		var out bytes.Buffer
		if err := WriteMetaRequest(&out, req); err != nil {
			t.Fatalf("WriteMetaRequest of decoded %+v: %v", req, err)
		}
		if !bytes.Equal(out.Bytes(), used) {
			t.Fatalf("not canonical: %x re-encodes as %x", used, out.Bytes())
		}
		again, err := ReadMetaRequest(&out)
		if err != nil || again != req {
			t.Fatalf("second decode = %+v, %v; want %+v", again, err, req)
		}
	})
}

// FuzzReadMetaResponse does the same for responses under a fuzzed body
// limit, and checks the limit holds.
func FuzzReadMetaResponse(f *testing.F) {
	for _, resp := range []MetaResponse{
		{Status: MetaOK, Body: []byte("manifest bytes")},
		{Status: MetaOK},
		{Status: MetaNotFound},
		{Status: MetaBusy},
		{Status: MetaRefused},
	} {
		var buf bytes.Buffer
		if err := WriteMetaResponse(&buf, resp); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes(), uint16(len(resp.Body)))
		f.Add(buf.Bytes(), uint16(0))
		f.Add(append(buf.Bytes(), "trailing"...), uint16(100))
	}
	f.Add([]byte{1, 0, 0, 0, 9, 'a'}, uint16(100))
	f.Add([]byte{2, 0, 0, 0, 1, 'a'}, uint16(100))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff}, uint16(0xffff))
	f.Fuzz(func(t *testing.T, in []byte, maxBody uint16) {
		r := bytes.NewReader(in)
		resp, err := ReadMetaResponse(r, int(maxBody))
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("error %v matches no sentinel", err)
			}
			if errors.Is(err, ErrFrameTooLarge) &&
				(len(in) < metaResponseHeaderLen || binary.BigEndian.Uint32(in[1:]) <= uint32(maxBody)) {
				t.Fatalf("%x refused as too large under a limit of %d", in, maxBody)
			}
			if resp.Body != nil {
				t.Fatalf("a rejected response carries %d bytes", len(resp.Body))
			}
			return
		}
		if len(resp.Body) > int(maxBody) {
			t.Fatalf("accepted a %d-byte body over the %d limit", len(resp.Body), maxBody)
		}
		used := in[:len(in)-r.Len()]
		var out bytes.Buffer
		if err := WriteMetaResponse(&out, resp); err != nil {
			t.Fatalf("WriteMetaResponse of decoded %v: %v", resp.Status, err)
		}
		if !bytes.Equal(out.Bytes(), used) {
			t.Fatalf("not canonical: %x re-encodes as %x", used, out.Bytes())
		}
		again, err := ReadMetaResponse(&out, int(maxBody))
		if err != nil || again.Status != resp.Status || !bytes.Equal(again.Body, resp.Body) {
			t.Fatalf("second decode = %v %x, %v; want %v %x", again.Status, again.Body, err, resp.Status, resp.Body)
		}
	})
}
