package manifest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// unpagedSample is a version 1 manifest, unsigned, of multi multi-chunk
// files interleaved with single-chunk and empty ones.
func unpagedSample(multi int) *Manifest {
	m := &Manifest{Version: Version, Name: "paged", Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), ChunkSize: core.MinChunkSize, Hash: HashSHA256}
	for i := range multi {
		p := fmt.Sprintf("d/f%04d", i)
		m.Files = append(m.Files, File{Path: p, Size: 3*core.MinChunkSize - 7, Chunks: 3, Root: core.SumSHA256([]byte(p))})
		if i%50 == 0 {
			m.Files = append(m.Files, File{Path: p + ".one", Size: 10, Chunks: 1, MediaType: "text/plain", Root: core.SumSHA256([]byte(p + ".one"))})
		}
	}
	m.Files = append(m.Files, File{Path: "empty", Root: Root(nil)})
	return m
}

// pagedSample is unpagedSample(multi) paged and signed.
func pagedSample(tb testing.TB, multi int) *Manifest {
	tb.Helper()
	m := unpagedSample(multi)
	m.PageRoots()
	if err := m.Sign(testKey(1)); err != nil {
		tb.Fatal(err)
	}
	return m
}

// pagedVOD is vodManifest paged.
func pagedVOD(tb testing.TB, rends, segs int) *Manifest {
	tb.Helper()
	m := vodManifest(tb, rends, segs)
	m.PageRoots()
	if err := m.Sign(testKey(1)); err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestPagedRoundTrip(t *testing.T) {
	const multi = 300
	orig := unpagedSample(multi)
	m := unpagedSample(multi)
	pages := m.PageRoots()
	if err := m.Sign(testKey(1)); err != nil {
		t.Fatal(err)
	}
	if len(pages) != 3 || len(m.RootPages) != 3 || len(pages[0]) != RootsPerPage*core.HashSize || len(pages[2]) != (multi-2*RootsPerPage)*core.HashSize {
		t.Fatalf("%d pages (%d hashes) for %d roots", len(pages), len(m.RootPages), multi)
	}
	b := encode(t, m)
	id, _ := m.ID()
	got, err := DecodeTrusted(b, id, PublicOf(testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Paged() || !bytes.Equal(encode(t, got), b) {
		t.Fatal("paged manifest did not round-trip")
	}
	paged := got.PagedFiles()
	if len(paged) != multi {
		t.Fatalf("%d paged files, want %d", len(paged), multi)
	}
	parsed := make([][]core.Hash, len(pages))
	for p, pb := range pages {
		if parsed[p], err = got.ParseRootPage(p, pb); err != nil {
			t.Fatal(err)
		}
	}
	for n, fi := range paged {
		page, slot := RootPageSlot(n)
		if parsed[page][slot] != orig.Files[fi].Root {
			t.Fatalf("file %d (%s): page %d slot %d holds another root", fi, got.Files[fi].Path, page, slot)
		}
	}
	for fi, f := range got.Files {
		if f.InPage(got.Version) != f.Root.IsZero() || !f.InPage(got.Version) && f.Root != orig.Files[fi].Root {
			t.Fatalf("file %s: inline root %s", f.Path, f.Root.Short())
		}
	}
	if bytes.Contains(b, []byte(orig.Files[0].Root.String())) {
		t.Fatal("a multi-chunk file's root is still in the manifest")
	}
}

// TestPagedSignatureDomain checks that a paged manifest is signed under its
// own domain, so a version 1 signature over the same bytes does not verify.
func TestPagedSignatureDomain(t *testing.T) {
	m := pagedSample(t, 10)
	msg, err := m.signedBytes()
	if err != nil || !bytes.HasPrefix(msg, []byte(SigningDomainPaged)) {
		t.Fatalf("signed bytes start %q (%v)", msg[:min(len(msg), 20)], err)
	}
	u := *m
	u.Signature = nil
	body, _ := json.Marshal(&u)
	m.Signature = ed25519.Sign(testKey(1), append([]byte(SigningDomain), body...))
	if _, err := Decode(encode(t, m)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("paged manifest signed under the version 1 domain: %v, want ErrBadSignature", err)
	}
}

func TestPagedDecodeRejects(t *testing.T) {
	repage := func(change func(m *Manifest)) []byte {
		m := pagedSample(t, 200)
		change(m)
		if err := m.Sign(testKey(1)); err != nil {
			t.Fatal(err)
		}
		return encode(t, m)
	}
	good := encode(t, pagedSample(t, 200))
	zero := core.Hash{}.String()
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"missing page", repage(func(m *Manifest) { m.RootPages = m.RootPages[:1] }), ErrMalformed},
		{"extra page", repage(func(m *Manifest) { m.RootPages = append(m.RootPages, core.Hash{1}) }), ErrMalformed},
		{"no pages", repage(func(m *Manifest) { m.RootPages = nil }), ErrMalformed},
		{"inline root of a paged file", repage(func(m *Manifest) { m.Files[0].Root = core.Hash{7} }), ErrMalformed},
		{"single-chunk file without root", repage(func(m *Manifest) { m.Files[1].Root = core.Hash{} }), ErrMalformed},
		{"pages in version 1", resign(t, func(m *Manifest) { m.RootPages = []core.Hash{{1}} }), ErrMalformed},
		{"version 1 without a root", resign(t, func(m *Manifest) { m.Files[0].Root = core.Hash{} }), ErrMalformed},
		{"explicit zero root", bytes.Replace(good, []byte(`"chunks":3}`), []byte(`"chunks":3,"root":"`+zero+`"}`), 1), ErrNonCanonical},
		{"relabelled version 1", bytes.Replace(good, []byte(`"version":2`), []byte(`"version":1`), 1), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Equal(tc.in, good) {
				t.Fatal("the variant is the good manifest: the test edit did not apply")
			}
			if _, err := Decode(tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("Decode: got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseRootPageRejects(t *testing.T) {
	m := unpagedSample(RootsPerPage + 5)
	pages := m.PageRoots()
	if _, err := m.ParseRootPage(1, pages[1]); err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(pages[1])
	flipped[3] ^= 1
	for name, tc := range map[string]struct {
		page int
		b    []byte
	}{
		"flipped byte":      {1, flipped},
		"short":             {1, pages[1][:64]},
		"other page":        {0, pages[1]},
		"page out of range": {2, pages[1]},
		"negative page":     {-1, pages[1]},
		"empty":             {1, nil},
	} {
		if _, err := m.ParseRootPage(tc.page, tc.b); !errors.Is(err, ErrBadRootPage) {
			t.Errorf("%s: %v, want ErrBadRootPage", name, err)
		}
	}
}

func FuzzParseRootPage(f *testing.F) {
	m := unpagedSample(RootsPerPage + 3)
	pages := m.PageRoots()
	f.Add(0, pages[0])
	f.Add(1, pages[1])
	f.Add(1, []byte{})
	f.Fuzz(func(t *testing.T, page int, b []byte) {
		roots, err := m.ParseRootPage(page, b)
		if err != nil {
			return
		}
		// Only the published page verifies, and encodes back to itself.
		if !bytes.Equal(b, pages[page]) || !bytes.Equal(RootPageBytes(roots), b) {
			t.Fatalf("accepted page %d that is not the published one", page)
		}
		again, err := m.ParseRootPage(page, RootPageBytes(roots))
		if err != nil || len(again) != len(roots) {
			t.Fatalf("decode → encode → decode unstable: %v", err)
		}
	})
}

func TestRootTable(t *testing.T) {
	orig := unpagedSample(RootsPerPage + 9)
	m := unpagedSample(RootsPerPage + 9)
	pages := m.PageRoots()
	tab := NewRootTable(m)
	for fi, f := range m.Files {
		page, paged := tab.Page(fi)
		r, ok := tab.Root(fi)
		if paged != f.InPage(m.Version) || ok == paged || ok && r != orig.Files[fi].Root {
			t.Fatalf("file %s before any page: page %d (%v), root %s (%v)", f.Path, page, paged, r.Short(), ok)
		}
	}
	if tab.PageSize(0) != RootPageSize || tab.PageSize(1) != 9*core.HashSize {
		t.Fatalf("page sizes %d, %d", tab.PageSize(0), tab.PageSize(1))
	}
	if err := tab.AddPage(1, pages[0]); !errors.Is(err, ErrBadRootPage) {
		t.Fatalf("page 0's bytes as page 1: %v", err)
	}
	for p, b := range pages {
		if err := tab.AddPage(p, b); err != nil {
			t.Fatal(err)
		}
	}
	for fi := range m.Files {
		f, ok := tab.File(fi)
		if !ok || f.Root != orig.Files[fi].Root {
			t.Fatalf("file %s: root %s (%v), want %s", f.Path, f.Root.Short(), ok, orig.Files[fi].Root.Short())
		}
	}
	v1 := NewRootTable(orig)
	if f, ok := v1.File(3); !ok || f.Root != orig.Files[3].Root {
		t.Fatal("a version 1 table does not give inline roots")
	}
}
