package token

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/manifest"
)

// FuzzDecode checks that the decoder never panics, that everything it
// accepts re-encodes to the same bytes, and that decoding is stable.
func FuzzDecode(f *testing.F) {
	pub, svc := keyOf("pub"), keyOf("svc")
	ds, _ := Delegate(pub, Delegation{Tenant: "a", Scope: PrefixScope("x/"), Delegate: manifest.PublicOf(svc), Expiry: t0.Add(time.Hour)})
	d, _ := DecodeDelegation(ds)
	for _, c := range []Claims{
		base(ContentScope(contentOf("a"))),
		{Tenant: "a", Scope: PrefixScope("x/y"), Region: "eu", Peer: "12D3KooW", NotBefore: t0, Expiry: t0.Add(time.Second)},
		{Tenant: "a", Scope: AnyScope(), NotBefore: t0, Expiry: t0.Add(time.Hour), Delegation: d},
	} {
		signer := pub
		if c.Delegation != nil {
			signer = svc
		}
		s, err := Issue(signer, c)
		if err != nil {
			f.Fatal(err)
		}
		tok, _ := Decode(s)
		f.Add(tok.raw)
	}
	f.Add([]byte{Version, typeToken})
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := DecodeBinary(b)
		if err != nil {
			return
		}
		enc, err := tok.Claims.appendUnsigned(nil)
		if err != nil {
			t.Fatalf("accepted token does not re-encode: %v", err)
		}
		if !bytes.Equal(append(enc, tok.Signature...), b) {
			t.Fatal("accepted a token that re-encodes differently")
		}
		again, err := Decode(tok.Encode())
		if err != nil || again.Encode() != tok.Encode() {
			t.Fatalf("decode → encode → decode unstable: %v", err)
		}
	})
}

// FuzzDecodeDelegation does the same for a printed delegation.
func FuzzDecodeDelegation(f *testing.F) {
	pub, svc := keyOf("pub"), keyOf("svc")
	for _, s := range []Scope{AnyScope(), PrefixScope("x/"), ContentScope(contentOf("c"))} {
		ds, err := Delegate(pub, Delegation{Tenant: "a", Scope: s, Delegate: manifest.PublicOf(svc), Expiry: t0})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ds)
	}
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := DecodeDelegation(s)
		if err != nil {
			return
		}
		b := append(d.appendUnsigned(nil), d.Signature...)
		again, err := DecodeDelegation(base64.RawURLEncoding.EncodeToString(b))
		if err != nil || !bytes.Equal(append(again.appendUnsigned(nil), again.Signature...), b) {
			t.Fatalf("decode → encode → decode unstable: %v", err)
		}
	})
}
