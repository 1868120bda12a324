// Package manifest is Shoal's content model: chunking arithmetic, Merkle
// roots and proofs over chunk hashes, hash layers, and the signed manifest
// whose hash is a content ID. It does no I/O beyond byte slices and key
// files, so every role (publisher, origin, peer, simulator) may import it.
//
// Encoding. A manifest travels as compact JSON in exactly the form Go's
// encoding/json writes for the Manifest struct (fields in declaration order,
// no whitespace). Decode accepts only that canonical form, so one manifest
// has one byte string and one content ID. The Ed25519 signature covers the
// version's signing domain (SigningDomain, SigningDomainPaged) followed by
// the same encoding with the signature omitted.
//
// Versions. A version 1 manifest carries every file's Merkle root. A paged
// manifest (VersionPaged) carries inline only the roots of files of at most
// one chunk; the roots of the others, in file order, are cut into root pages
// of RootsPerPage roots, published beside the manifest, and the manifest
// lists each page's SHA-256 (RootPages). A page is then as self-verifying as
// a hash layer, and a receiver fetches only the pages of the files it reads,
// so the manifest a viewer waits for no longer grows by 32 bytes of entropy
// per segment.
package manifest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shoal-cdn/shoal/core"
)

// Manifest format versions this package reads and writes.
const (
	// Version is the original format: every file's root inline.
	Version = 1
	// VersionPaged moves multi-chunk files' roots into root pages.
	VersionPaged = 2
)

// HashSHA256 is the only hash algorithm of both format versions.
const HashSHA256 = "sha256"

// SigningDomain prefixes a version 1 manifest's signed bytes so a manifest
// signature can never be replayed as a signature over anything else;
// SigningDomainPaged does the same for VersionPaged, so neither version's
// signature passes for the other's.
const (
	SigningDomain      = "shoal manifest v1\x00"
	SigningDomainPaged = "shoal manifest v2\x00"
)

// signingDomain is the domain of format version v.
func signingDomain(v int) string {
	if v == VersionPaged {
		return SigningDomainPaged
	}
	return SigningDomain
}

// Limits on what Decode accepts.
const (
	MaxManifestSize = 64 << 20
	MaxFiles        = 1 << 20
	MaxPathLen      = 4096
	MaxNameLen      = 1024
	MaxMediaTypeLen = 255
	MaxFileSize     = 1 << 50
)

// Decode errors; each is wrapped with detail.
var (
	ErrTooLarge     = errors.New("manifest too large")
	ErrMalformed    = errors.New("malformed manifest")
	ErrVersion      = errors.New("unknown manifest version")
	ErrNonCanonical = errors.New("manifest not in canonical encoding")
	ErrBadPath      = errors.New("bad file path")
	ErrDuplicate    = errors.New("duplicate file path")
	ErrBadSize      = errors.New("file size disagrees with chunk count")
	ErrBadSignature = errors.New("bad manifest signature")
	ErrUntrusted    = errors.New("manifest not signed by the trusted publisher")
	ErrContentID    = errors.New("manifest does not match content ID")
)

// Manifest describes one immutable content: a set of files cut into chunks.
type Manifest struct {
	Version   int       `json:"version"`
	Name      string    `json:"name"`
	Created   time.Time `json:"created"`
	Publisher PublicKey `json:"publisher"`
	ChunkSize int64     `json:"chunk_size"`
	Hash      string    `json:"hash"`
	Files     []File    `json:"files"`
	// RootPages lists, in a paged manifest only, the SHA-256 of each root
	// page (see RootsPerPage).
	RootPages []core.Hash `json:"root_pages,omitempty"`
	Policy    *Policy     `json:"policy,omitempty"`
	Media     *Media      `json:"media,omitempty"` // set when the content is an HLS or DASH output
	Signature []byte      `json:"signature,omitempty"`
}

// File is one file of a content.
type File struct {
	Path      string `json:"path"` // slash-separated, relative, clean
	Size      int64  `json:"size"`
	Chunks    int64  `json:"chunks"` // ceil(Size / ChunkSize)
	MediaType string `json:"type,omitempty"`
	// Root is the Merkle root of the chunk hashes. A paged manifest leaves
	// it zero (and out of the encoding) for files of more than one chunk:
	// their roots are in root pages.
	Root core.Hash `json:"root,omitzero"`
}

// Policy is the publisher's delivery policy for a content.
type Policy struct {
	TTLSeconds int64  `json:"ttl_s,omitempty"` // how long receivers may keep seeding it; 0 = no limit
	Scope      string `json:"scope,omitempty"` // tenant scope the content belongs to
	// Regions, when set, restrict the content to peers whose access token
	// names one of them (data residency). Empty: anywhere. Omitted from
	// the encoding when empty, so manifests without it keep their IDs.
	Regions []string `json:"regions,omitempty"`
}

// Limits on Policy.Regions.
const (
	MaxRegions   = 32
	MaxRegionLen = 64 // as discovery.MaxRegionLen and token.MaxRegion
)

// CheckRegions reports whether rs is an acceptable Policy.Regions: at most
// MaxRegions distinct labels of 1..MaxRegionLen printable ASCII characters
// without spaces or commas.
func CheckRegions(rs []string) error {
	if len(rs) > MaxRegions {
		return fmt.Errorf("%w: %d regions, at most %d", ErrMalformed, len(rs), MaxRegions)
	}
	seen := make(map[string]bool, len(rs))
	for _, r := range rs {
		if r == "" || len(r) > MaxRegionLen || !printableASCII(r) || strings.ContainsAny(r, " ,") {
			return fmt.Errorf("%w: region %q: want 1 to %d printable ASCII characters without spaces or commas", ErrMalformed, r, MaxRegionLen)
		}
		if seen[r] {
			return fmt.Errorf("%w: region %q listed twice", ErrMalformed, r)
		}
		seen[r] = true
	}
	return nil
}

// Sign sets Publisher and Signature from priv.
func (m *Manifest) Sign(priv ed25519.PrivateKey) error {
	m.Publisher = PublicOf(priv)
	m.Signature = nil
	msg, err := m.signedBytes()
	if err != nil {
		return err
	}
	m.Signature = ed25519.Sign(priv, msg)
	return nil
}

func (m *Manifest) signedBytes() ([]byte, error) {
	u := *m
	u.Signature = nil
	b, err := json.Marshal(&u)
	if err != nil {
		return nil, err
	}
	return append([]byte(signingDomain(m.Version)), b...), nil
}

// signedFromCanonical derives the signed bytes from a manifest's canonical
// encoding b without encoding it again: the signature is the last field,
// so b is the unsigned encoding with `,"signature":"<base64>"` before its
// closing brace. It reports false if b does not end that way (then the
// caller encodes).
func signedFromCanonical(b, sig []byte, domain string) ([]byte, bool) {
	tail := `,"signature":"` + base64.StdEncoding.EncodeToString(sig) + `"}`
	if !bytes.HasSuffix(b, []byte(tail)) {
		return nil, false
	}
	body := b[:len(b)-len(tail)]
	msg := make([]byte, 0, len(domain)+len(body)+1)
	msg = append(msg, domain...)
	msg = append(msg, body...)
	return append(msg, '}'), true
}

// Encode returns the canonical encoding of a signed manifest.
func (m *Manifest) Encode() ([]byte, error) {
	if len(m.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: manifest is not signed", ErrBadSignature)
	}
	return json.Marshal(m)
}

// ID returns the content ID of a signed manifest.
func (m *Manifest) ID() (core.ContentID, error) {
	b, err := m.Encode()
	if err != nil {
		return core.ContentID{}, err
	}
	return core.ContentID(core.SumSHA256(b)), nil
}

// Decode parses and checks a signed manifest: size limits, version,
// structure, canonical form, every file entry, and the signature against
// the publisher key it carries. Use DecodeTrusted to also pin the publisher.
func Decode(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(b), MaxManifestSize)
	}
	// The fast path proves canonical form as it reads; the general one
	// decodes by reflection and compares a re-encoding.
	m, canonical := decodeCanonical(b)
	if !canonical {
		m = new(Manifest)
		if err := decodeStrict(b, "manifest", m, Version, VersionPaged); err != nil {
			return nil, err
		}
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	if len(m.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d signature bytes, want %d", ErrBadSignature, len(m.Signature), ed25519.SignatureSize)
	}
	if !canonical {
		enc, err := m.Encode()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if !bytes.Equal(enc, b) {
			return nil, fmt.Errorf("%w: re-encoding differs (whitespace, field order, escapes or number form)", ErrNonCanonical)
		}
	}
	msg, ok := signedFromCanonical(b, m.Signature, signingDomain(m.Version))
	if !ok {
		var err error
		if msg, err = m.signedBytes(); err != nil {
			return nil, err
		}
	}
	if !ed25519.Verify(m.Publisher[:], msg, m.Signature) {
		return nil, fmt.Errorf("%w: signature does not verify under publisher %s", ErrBadSignature, m.Publisher)
	}
	return m, nil
}

// DecodeTrusted decodes b, then checks that it hashes to id and was signed by
// a key trust trusts.
func DecodeTrusted(b []byte, id core.ContentID, trust Trust) (*Manifest, error) {
	if got := core.ContentID(core.SumSHA256(b)); got != id {
		return nil, fmt.Errorf("%w: bytes hash to %s, want %s", ErrContentID, got, id)
	}
	m, err := Decode(b)
	if err != nil {
		return nil, err
	}
	if !trust.Trusts(m.Publisher) {
		return nil, untrusted("manifest "+id.String(), m.Publisher, trust)
	}
	return m, nil
}

func (m *Manifest) validate() error {
	if len(m.Name) > MaxNameLen || !utf8.ValidString(m.Name) || strings.ContainsRune(m.Name, 0) {
		return fmt.Errorf("%w: name is not valid UTF-8 of at most %d bytes", ErrMalformed, MaxNameLen)
	}
	if err := core.CheckChunkSize(m.ChunkSize); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.Hash != HashSHA256 {
		return fmt.Errorf("%w: hash algorithm %q, want %q", ErrMalformed, m.Hash, HashSHA256)
	}
	if len(m.Files) > MaxFiles {
		return fmt.Errorf("%w: %d files, at most %d", ErrTooLarge, len(m.Files), MaxFiles)
	}
	seen := make(map[string]bool, len(m.Files))
	for i, f := range m.Files {
		if err := CheckPath(f.Path); err != nil {
			return fmt.Errorf("file %d: %w", i, err)
		}
		if seen[f.Path] {
			return fmt.Errorf("%w: %q", ErrDuplicate, f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 || f.Size > MaxFileSize {
			return fmt.Errorf("%w: %s: size %d out of range", ErrBadSize, f.Path, f.Size)
		}
		if want := core.ChunkCount(f.Size, m.ChunkSize); f.Chunks != want {
			return fmt.Errorf("%w: %s: %d bytes in %d-byte chunks is %d chunks, manifest says %d", ErrBadSize, f.Path, f.Size, m.ChunkSize, want, f.Chunks)
		}
		if f.Chunks == 0 && f.Root != emptyRoot {
			return fmt.Errorf("%w: %s: empty file with a non-empty root", ErrMalformed, f.Path)
		}
		if inline := !m.Paged() || f.Chunks < 2; inline == f.Root.IsZero() {
			if inline {
				return fmt.Errorf("%w: %s: no root", ErrMalformed, f.Path)
			}
			return fmt.Errorf("%w: %s: a paged manifest's file of %d chunks has its root inline", ErrMalformed, f.Path, f.Chunks)
		}
		if len(f.MediaType) > MaxMediaTypeLen || !printableASCII(f.MediaType) {
			return fmt.Errorf("%w: %s: media type is not printable ASCII of at most %d bytes", ErrMalformed, f.Path, MaxMediaTypeLen)
		}
	}
	if err := m.validatePages(); err != nil {
		return err
	}
	// A path may not be both a file and a directory of another file.
	for p := range seen {
		// p is clean (CheckPath): its directories are its prefixes up to
		// a slash.
		for d := p; ; {
			k := strings.LastIndexByte(d, '/')
			if k < 0 {
				break
			}
			if d = d[:k]; seen[d] {
				return fmt.Errorf("%w: %q is a file and also the directory of %q", ErrDuplicate, d, p)
			}
		}
	}
	if m.Policy != nil && m.Policy.TTLSeconds < 0 {
		return fmt.Errorf("%w: negative TTL", ErrMalformed)
	}
	if m.Policy != nil {
		if err := CheckRegions(m.Policy.Regions); err != nil {
			return err
		}
	}
	if m.Media != nil {
		if err := m.Media.validate(seen); err != nil {
			return err
		}
	}
	return nil
}

// CheckPath reports whether p is an acceptable file path: relative,
// slash-separated, clean, without NUL, backslash or "." and ".." elements,
// valid UTF-8 and within the length limits. Such a path can never escape the
// directory a receiver writes into.
func CheckPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w: %q: %s", ErrBadPath, p, why) }
	switch {
	case p == "":
		return bad("empty")
	case len(p) > MaxPathLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxPathLen))
	case !utf8.ValidString(p):
		return bad("not valid UTF-8")
	case strings.ContainsRune(p, 0):
		return bad("contains NUL")
	case strings.ContainsRune(p, '\\'):
		return bad("contains a backslash")
	case strings.HasPrefix(p, "/"):
		return bad("absolute")
	}
	for el := range strings.SplitSeq(p, "/") {
		switch {
		case el == "":
			return bad("empty element")
		case el == "." || el == "..":
			return bad("escapes the content root")
		case len(el) > 255:
			return bad("element longer than 255 bytes")
		}
	}
	if path.Clean(p) != p {
		return bad("not clean")
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// File returns the file with the given path.
func (m *Manifest) File(p string) (File, bool) {
	for _, f := range m.Files {
		if f.Path == p {
			return f, true
		}
	}
	return File{}, false
}

// TotalSize is the sum of the file sizes.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// TotalChunks is the sum of the files' chunk counts: the size of the
// content's global chunk index space (file by file, in manifest order).
func (m *Manifest) TotalChunks() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Chunks
	}
	return n
}
