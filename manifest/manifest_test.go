package manifest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// testKey is deterministic so failures reproduce.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func sampleManifest(t testing.TB) *Manifest {
	t.Helper()
	leaves := []core.Hash{core.SumSHA256([]byte("a")), core.SumSHA256([]byte("b"))}
	m := &Manifest{
		Version:   Version,
		Name:      "sample",
		Created:   time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC),
		ChunkSize: core.DefaultChunkSize,
		Hash:      HashSHA256,
		Files: []File{
			{Path: "dir/a.bin", Size: core.DefaultChunkSize + 1, Chunks: 2, Root: Root(leaves), MediaType: "application/octet-stream"},
			{Path: "empty", Size: 0, Chunks: 0, Root: Root(nil)},
		},
	}
	if err := m.Sign(testKey(1)); err != nil {
		t.Fatal(err)
	}
	return m
}

func encode(t testing.TB, m *Manifest) []byte {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestManifestRoundTrip(t *testing.T) {
	m := sampleManifest(t)
	b := encode(t, m)
	id, _ := m.ID()
	got, err := DecodeTrusted(b, id, PublicOf(testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encode(t, got), b) {
		t.Fatal("re-encoding differs")
	}
	if got.TotalChunks() != 2 || got.TotalSize() != core.DefaultChunkSize+1 {
		t.Fatalf("totals: %d chunks %d bytes", got.TotalChunks(), got.TotalSize())
	}
}

// resign re-signs a manifest after a change, so the test reaches the check
// under test instead of failing on the signature.
func resign(t *testing.T, change func(m *Manifest)) []byte {
	m := sampleManifest(t)
	change(m)
	if err := m.Sign(testKey(1)); err != nil {
		t.Fatal(err)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	good := encode(t, sampleManifest(t))
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"bad signature", bytes.Replace(good, []byte(`"name":"sample"`), []byte(`"name":"sampl3"`), 1), ErrBadSignature},
		{"signature by another key", func() []byte {
			m := sampleManifest(t)
			m.Signature = ed25519.Sign(testKey(2), []byte("x"))
			return encode(t, m)
		}(), ErrBadSignature},
		{"unknown version", bytes.Replace(good, []byte(`"version":1`), []byte(`"version":3`), 1), ErrVersion},
		{"no version", []byte(`{"name":"x"}`), ErrMalformed},
		{"not json", []byte("hello"), ErrMalformed},
		{"trailing data", append(append([]byte{}, good...), []byte(" {}")...), ErrMalformed},
		{"unknown field", bytes.Replace(good, []byte(`"name":`), []byte(`"extra":1,"name":`), 1), ErrMalformed},
		{"whitespace", bytes.Replace(good, []byte(`"name":`), []byte(`"name": `), 1), ErrNonCanonical},
		{"dotdot path", resign(t, func(m *Manifest) { m.Files[0].Path = "../etc/passwd" }), ErrBadPath},
		{"inner dotdot", resign(t, func(m *Manifest) { m.Files[0].Path = "a/../../b" }), ErrBadPath},
		{"absolute path", resign(t, func(m *Manifest) { m.Files[0].Path = "/etc/passwd" }), ErrBadPath},
		{"NUL in path", resign(t, func(m *Manifest) { m.Files[0].Path = "a\x00b" }), ErrBadPath},
		{"backslash", resign(t, func(m *Manifest) { m.Files[0].Path = `..\x` }), ErrBadPath},
		{"empty element", resign(t, func(m *Manifest) { m.Files[0].Path = "a//b" }), ErrBadPath},
		{"dot element", resign(t, func(m *Manifest) { m.Files[0].Path = "./a" }), ErrBadPath},
		{"empty path", resign(t, func(m *Manifest) { m.Files[0].Path = "" }), ErrBadPath},
		{"duplicate path", resign(t, func(m *Manifest) { m.Files[1].Path = m.Files[0].Path }), ErrDuplicate},
		{"file is a dir", resign(t, func(m *Manifest) { m.Files[1].Path = "dir" }), ErrDuplicate},
		{"size vs chunks", resign(t, func(m *Manifest) { m.Files[0].Size = 10 }), ErrBadSize},
		{"negative size", resign(t, func(m *Manifest) { m.Files[0].Size = -1 }), ErrBadSize},
		{"too many chunks", resign(t, func(m *Manifest) { m.Files[0].Chunks = 3 }), ErrBadSize},
		{"bad chunk size", resign(t, func(m *Manifest) { m.ChunkSize = 1000 }), ErrMalformed},
		{"bad hash alg", resign(t, func(m *Manifest) { m.Hash = "md5" }), ErrMalformed},
		{"empty file root", resign(t, func(m *Manifest) { m.Files[1].Root = core.SumSHA256(nil) }), ErrMalformed},
		{"oversize", make([]byte, MaxManifestSize+1), ErrTooLarge},
		{"long name", resign(t, func(m *Manifest) { m.Name = strings.Repeat("n", MaxNameLen+1) }), ErrMalformed},
		{"empty region", resign(t, func(m *Manifest) { m.Policy = &Policy{Regions: []string{""}} }), ErrMalformed},
		{"region with a comma", resign(t, func(m *Manifest) { m.Policy = &Policy{Regions: []string{"eu,us"}} }), ErrMalformed},
		{"duplicate region", resign(t, func(m *Manifest) { m.Policy = &Policy{Regions: []string{"eu", "eu"}} }), ErrMalformed},
		{"long region", resign(t, func(m *Manifest) { m.Policy = &Policy{Regions: []string{strings.Repeat("r", MaxRegionLen+1)}} }), ErrMalformed},
		{"too many regions", resign(t, func(m *Manifest) {
			m.Policy = &Policy{}
			for i := range MaxRegions + 1 {
				m.Policy.Regions = append(m.Policy.Regions, fmt.Sprint("r", i))
			}
		}), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode: got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestSignedBytesFromCanonical guards Decode's shortcut: the signed bytes
// it cuts out of the canonical encoding are exactly those Sign signed, with
// and without the optional fields that come before the signature.
func TestSignedBytesFromCanonical(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(m *Manifest)
	}{
		{"plain", func(*Manifest) {}},
		{"policy", func(m *Manifest) { m.Policy = &Policy{TTLSeconds: 60, Regions: []string{"eu"}} }},
		{"escapes", func(m *Manifest) { m.Name = `"<quoted> & \ é"` }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := sampleManifest(t)
			tc.change(m)
			if err := m.Sign(testKey(1)); err != nil {
				t.Fatal(err)
			}
			want, err := m.signedBytes()
			if err != nil {
				t.Fatal(err)
			}
			got, ok := signedFromCanonical(encode(t, m), m.Signature, signingDomain(m.Version))
			if !ok || !bytes.Equal(got, want) {
				t.Fatalf("signed bytes from the encoding (ok %v):\n%s\nwant\n%s", ok, got, want)
			}
			if _, err := Decode(encode(t, m)); err != nil {
				t.Fatal(err)
			}
		})
	}
	// An encoding that does not end in the signature is left to the slow
	// path.
	if _, ok := signedFromCanonical([]byte(`{"version":1}`), make([]byte, ed25519.SignatureSize), SigningDomain); ok {
		t.Fatal("a document without the signature field passed")
	}
}

func TestDecodeTrustedRejects(t *testing.T) {
	m := sampleManifest(t)
	b := encode(t, m)
	id, _ := m.ID()
	if _, err := DecodeTrusted(b, id, PublicOf(testKey(9))); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("other publisher: got %v", err)
	}
	var other core.ContentID
	if _, err := DecodeTrusted(b, other, PublicOf(testKey(1))); !errors.Is(err, ErrContentID) {
		t.Fatalf("other ID: got %v", err)
	}
}

func TestCheckPathAccepts(t *testing.T) {
	for _, p := range []string{"a", "a/b/c.txt", "dir with space/ü.bin", ".hidden", "a..b"} {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q) = %v", p, err)
		}
	}
}

func TestKeyFile(t *testing.T) {
	p := t.TempDir() + "/k.pem"
	priv, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(p, priv); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(p, priv); err == nil {
		t.Fatal("overwrote an existing key file")
	}
	got, err := ReadKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if PublicOf(got) != pub {
		t.Fatal("key changed on the way through the file")
	}
	parsed, err := ParsePublicKey(pub.String())
	if err != nil || parsed != pub {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	if _, err := ParsePublicKey("short"); !errors.Is(err, ErrBadKey) {
		t.Fatalf("short key: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	good := encode(f, sampleManifest(f))
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":3}`))
	f.Add(encode(f, pagedSample(f, RootsPerPage+1)))
	f.Add(bytes.Replace(good, []byte("dir/a.bin"), []byte("../a.bin"), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded manifest does not encode: %v", err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("encode(decode(b)) != b")
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		want, err := m.signedBytes()
		if got, ok := signedFromCanonical(b, m.Signature, signingDomain(m.Version)); err != nil || ok && !bytes.Equal(got, want) {
			t.Fatalf("signed bytes cut from the encoding differ from the encoded ones (%v)", err)
		}
		if fmt.Sprint(m2) != fmt.Sprint(m) {
			t.Fatal("decode → encode → decode changed the manifest")
		}
	})
}

// TestPolicyRegions checks that regions are signed with the rest and that a
// policy without them encodes exactly as before the field existed, so the
// content IDs of earlier manifests do not change.
func TestPolicyRegions(t *testing.T) {
	m := sampleManifest(t)
	m.Policy = &Policy{TTLSeconds: 60, Scope: "acme"}
	if err := m.Sign(testKey(1)); err != nil {
		t.Fatal(err)
	}
	if b := encode(t, m); !bytes.Contains(b, []byte(`"policy":{"ttl_s":60,"scope":"acme"},`)) {
		t.Fatalf("policy without regions encodes as %s", b)
	}
	m.Policy.Regions = []string{"eu-west", "eu-central"}
	if err := m.Sign(testKey(1)); err != nil {
		t.Fatal(err)
	}
	b := encode(t, m)
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Policy.Regions) != "[eu-west eu-central]" {
		t.Fatalf("regions after round trip: %v", got.Policy.Regions)
	}
	forged := bytes.Replace(b, []byte(`"eu-central"`), []byte(`"us-east-1a"`), 1)
	if _, err := Decode(forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("changed region: %v, want ErrBadSignature", err)
	}
}
