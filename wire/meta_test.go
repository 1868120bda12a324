package wire

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

// metaBytes returns n bytes generated from (name, seed).
func metaBytes(name string, seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(len(name))))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func metaKey(seed uint64) core.Hash {
	return core.SumSHA256(metaBytes("key", seed, 8))
}

func TestMetaRequestRoundTrip(t *testing.T) {
	for _, req := range []MetaRequest{
		{Kind: MetaManifest, Key: metaKey(1)},
		{Kind: MetaHashLayer, Key: metaKey(2)},
		{Kind: MetaHashLayer},
		{Kind: MetaManifest, Key: metaKey(4), Token: "AQRrZXk"},
		{Kind: MetaHashLayer, Key: metaKey(5), Token: strings.Repeat("A", MaxToken)},
		{Kind: MetaRootPage, Key: metaKey(6)},
	} {
		var buf bytes.Buffer
		if err := WriteMetaRequest(&buf, req); err != nil {
			t.Fatalf("%v: %v", req.Kind, err)
		}
		if want := MetaRequestLen + len(req.Token) + 2*min(len(req.Token), 1); buf.Len() != want {
			t.Fatalf("%v request is %d bytes, want %d", req.Kind, buf.Len(), want)
		}
		got, err := ReadMetaRequest(&buf)
		if err != nil || got != req {
			t.Fatalf("ReadMetaRequest = %+v, %v; want %+v", got, err, req)
		}
	}
}

func TestMetaResponseRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp MetaResponse
	}{
		{"ok", MetaResponse{Status: MetaOK, Body: metaBytes("ok", 1, 300)}},
		{"ok-empty", MetaResponse{Status: MetaOK}},
		{"ok-over-one-read-step", MetaResponse{Status: MetaOK, Body: metaBytes("big", 2, 3*metaReadStep+17)}},
		{"not-found", MetaResponse{Status: MetaNotFound}},
		{"busy", MetaResponse{Status: MetaBusy}},
		{"refused", MetaResponse{Status: MetaRefused}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteMetaResponse(&buf, tc.resp); err != nil {
				t.Fatal(err)
			}
			got, err := ReadMetaResponse(&buf, len(tc.resp.Body))
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.resp.Status || !bytes.Equal(got.Body, tc.resp.Body) {
				t.Fatalf("got %v with %d bytes, want %v with %d", got.Status, len(got.Body), tc.resp.Status, len(tc.resp.Body))
			}
			if cap(got.Body) != len(got.Body) {
				t.Fatalf("body capacity %d for %d bytes", cap(got.Body), len(got.Body))
			}
		})
	}
}

func TestMetaGoldenEncoding(t *testing.T) {
	var key core.Hash
	for i := range key {
		key[i] = byte(i)
	}
	var buf bytes.Buffer
	if err := WriteMetaRequest(&buf, MetaRequest{Kind: MetaHashLayer, Key: key}); err != nil {
		t.Fatal(err)
	}
	want := append([]byte{2}, key[:]...)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("request = %x, want %x", buf.Bytes(), want)
	}
	buf.Reset()
	if err := WriteMetaResponse(&buf, MetaResponse{Status: MetaOK, Body: []byte("abc")}); err != nil {
		t.Fatal(err)
	}
	if want := []byte{1, 0, 0, 0, 3, 'a', 'b', 'c'}; !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("response = %x, want %x", buf.Bytes(), want)
	}
	buf.Reset()
	if err := WriteMetaResponse(&buf, MetaResponse{Status: MetaBusy}); err != nil {
		t.Fatal(err)
	}
	if want := []byte{3, 0, 0, 0, 0}; !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("busy response = %x, want %x", buf.Bytes(), want)
	}
}

func TestReadMetaRequestRejects(t *testing.T) {
	key := metaKey(3)
	for _, tc := range []struct {
		name string
		in   []byte
		want []error
	}{
		{"empty", nil, []error{ErrMalformed, io.ErrUnexpectedEOF}},
		{"short", append([]byte{1}, key[:31]...), []error{ErrMalformed, io.ErrUnexpectedEOF}},
		{"kind-zero", make([]byte, MetaRequestLen), []error{ErrMalformed}},
		{"kind-unknown", append([]byte{4}, key[:]...), []error{ErrMalformed}},
		{"token-flag-without-token", append([]byte{1 | MetaTokenFlag}, key[:]...), []error{ErrMalformed, io.ErrUnexpectedEOF}},
		{"token-empty", append(append([]byte{1 | MetaTokenFlag}, key[:]...), 0, 0), []error{ErrMalformed}},
		{"token-too-long", append(append([]byte{1 | MetaTokenFlag}, key[:]...), 0x08, 0x01), []error{ErrMalformed}},
		{"token-short", append(append([]byte{1 | MetaTokenFlag}, key[:]...), 0, 4, 'A'), []error{ErrMalformed, io.ErrUnexpectedEOF}},
		{"token-not-printable", append(append([]byte{1 | MetaTokenFlag}, key[:]...), 0, 2, 'A', '\n'), []error{ErrMalformed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadMetaRequest(bytes.NewReader(tc.in))
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want %v", err, want)
				}
			}
		})
	}
}

func TestReadMetaResponseRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		maxBody int
		want    []error
	}{
		{"empty", nil, 10, []error{ErrMalformed, io.ErrUnexpectedEOF}},
		{"short-header", []byte{1, 0, 0}, 10, []error{ErrMalformed, io.ErrUnexpectedEOF}},
		{"short-body", []byte{1, 0, 0, 0, 4, 'a', 'b'}, 10, []error{ErrMalformed, io.ErrUnexpectedEOF}},
		{"status-zero", []byte{0, 0, 0, 0, 0}, 10, []error{ErrMalformed}},
		{"status-unknown", []byte{5, 0, 0, 0, 0}, 10, []error{ErrMalformed}},
		{"refused-with-body", []byte{4, 0, 0, 0, 1, 0}, 10, []error{ErrMalformed}},
		{"not-found-with-body", []byte{2, 0, 0, 0, 1, 'x'}, 10, []error{ErrMalformed}},
		{"busy-with-body", []byte{3, 0, 0, 0, 1, 'x'}, 10, []error{ErrMalformed}},
		{"over-limit", []byte{1, 0, 0, 0, 11}, 10, []error{ErrFrameTooLarge}},
		{"over-zero-limit", []byte{1, 0, 0, 0, 1, 'x'}, 0, []error{ErrFrameTooLarge}},
		{"over-negative-limit", []byte{1, 0, 0, 0, 1, 'x'}, -5, []error{ErrFrameTooLarge}},
		{"huge-length", []byte{1, 0xff, 0xff, 0xff, 0xff}, 1 << 30, []error{ErrFrameTooLarge}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := ReadMetaResponse(bytes.NewReader(tc.in), tc.maxBody)
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want %v", err, want)
				}
			}
			if resp.Body != nil {
				t.Fatalf("a rejected response carries %d bytes", len(resp.Body))
			}
		})
	}
}

func TestMetaWriteRefusesInvalid(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMetaRequest(&buf, MetaRequest{Kind: 0}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("kind 0: %v", err)
	}
	if err := WriteMetaRequest(&buf, MetaRequest{Kind: 9}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("kind 9: %v", err)
	}
	if err := WriteMetaResponse(&buf, MetaResponse{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("status 0: %v", err)
	}
	if err := WriteMetaResponse(&buf, MetaResponse{Status: MetaNotFound, Body: []byte("x")}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("not found with body: %v", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("refused writes left %d bytes", buf.Len())
	}
}

// TestMetaDecodersReadNoFurther guards handing the stream on: each decoder
// consumes exactly its message.
func TestMetaDecodersReadNoFurther(t *testing.T) {
	var buf bytes.Buffer
	WriteMetaRequest(&buf, MetaRequest{Kind: MetaManifest, Key: metaKey(4)})
	WriteMetaResponse(&buf, MetaResponse{Status: MetaOK, Body: []byte("body")})
	buf.WriteString("tail")
	if _, err := ReadMetaRequest(&buf); err != nil {
		t.Fatal(err)
	}
	if resp, err := ReadMetaResponse(&buf, 4); err != nil || string(resp.Body) != "body" {
		t.Fatalf("response = %q, %v", resp.Body, err)
	}
	if buf.String() != "tail" {
		t.Fatalf("left %q, want %q", buf.String(), "tail")
	}
}

// stingyReader hands out its bytes and records the biggest read asked for.
type stingyReader struct {
	r       io.Reader
	biggest int
}

func (s *stingyReader) Read(p []byte) (int, error) {
	s.biggest = max(s.biggest, len(p))
	return s.r.Read(p)
}

// TestMetaStalledBodyPinsLittle guards against a peer that announces a
// large body and sends a few bytes: the decoder allocates by arrival.
func TestMetaStalledBodyPinsLittle(t *testing.T) {
	in := append([]byte{1, 0x04, 0, 0, 0}, "only a little"...) // announces 64 MiB
	sr := &stingyReader{r: bytes.NewReader(in)}
	_, err := ReadMetaResponse(sr, 1<<30)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want unexpected EOF", err)
	}
	if sr.biggest > metaReadStep {
		t.Fatalf("decoder asked for a %d-byte read before the bytes arrived", sr.biggest)
	}
}

type failReader struct{ err error }

func (f failReader) Read([]byte) (int, error) { return 0, f.err }

func TestMetaTransportErrorIsNotMalformed(t *testing.T) {
	boom := errors.New("boom")
	if _, err := ReadMetaRequest(failReader{boom}); !errors.Is(err, boom) || errors.Is(err, ErrMalformed) {
		t.Fatalf("request: %v", err)
	}
	if _, err := ReadMetaResponse(failReader{boom}, 10); !errors.Is(err, boom) || errors.Is(err, ErrMalformed) {
		t.Fatalf("response: %v", err)
	}
}

func TestMetaStrings(t *testing.T) {
	got := []string{MetaManifest.String(), MetaHashLayer.String(), MetaRootPage.String(), MetaKind(7).String(),
		MetaOK.String(), MetaNotFound.String(), MetaBusy.String(), MetaStatus(0).String()}
	want := []string{"manifest", "hash layer", "root page", "meta kind(7)", "ok", "not found", "busy", "meta status(0)"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
