package manifest

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/shoal-cdn/shoal/core"
)

// RootsPerPage is how many roots a full root page holds (4 KiB of them);
// the last page of a content holds the rest.
const RootsPerPage = 128

// RootPageSize is the size of a full root page.
const RootPageSize = RootsPerPage * core.HashSize

// ErrBadRootPage is returned when a root page has the wrong length or does
// not hash to the page hash the signed manifest lists.
var ErrBadRootPage = errors.New("bad root page")

// Paged reports whether m is a paged manifest: the roots of its files of
// more than one chunk are in root pages, not inline.
func (m *Manifest) Paged() bool { return m.Version == VersionPaged }

// InPage reports whether f's root is in a root page of a manifest of
// version v rather than inline.
func (f File) InPage(v int) bool { return v == VersionPaged && f.Chunks > 1 }

// PagedFiles lists, in file order, the indexes of the files whose roots are
// in root pages: the n-th of them has its root at RootPageSlot(n). It is
// nil for a version 1 manifest.
func (m *Manifest) PagedFiles() []int {
	if !m.Paged() {
		return nil
	}
	var out []int
	for i, f := range m.Files {
		if f.InPage(m.Version) {
			out = append(out, i)
		}
	}
	return out
}

// RootPageSlot says where the root of the n-th paged file (in PagedFiles
// order) is: page page, slot slot.
func RootPageSlot(n int) (page, slot int) { return n / RootsPerPage, n % RootsPerPage }

// rootPageCount is how many pages hold n roots.
func rootPageCount(n int) int { return (n + RootsPerPage - 1) / RootsPerPage }

// rootPageLen is how many roots page holds out of n.
func rootPageLen(n, page int) int { return min(RootsPerPage, n-page*RootsPerPage) }

// validatePages checks that RootPages is present exactly in a paged
// manifest and lists one hash per page of its paged files' roots.
func (m *Manifest) validatePages() error {
	if !m.Paged() {
		if m.RootPages != nil {
			return fmt.Errorf("%w: root pages in a version %d manifest", ErrMalformed, m.Version)
		}
		return nil
	}
	n := 0
	for _, f := range m.Files {
		if f.InPage(m.Version) {
			n++
		}
	}
	if want := rootPageCount(n); len(m.RootPages) != want {
		return fmt.Errorf("%w: %d root pages for %d paged roots, want %d", ErrMalformed, len(m.RootPages), n, want)
	}
	return nil
}

// RootPageBytes encodes roots as a root page: the concatenated 32-byte
// roots.
func RootPageBytes(roots []core.Hash) []byte { return HashLayer(roots).Bytes() }

// ParseRootPage checks b against page page of m: it must hold exactly that
// page's number of roots and hash to the page hash m signs. It returns the
// roots in slot order.
func (m *Manifest) ParseRootPage(page int, b []byte) ([]core.Hash, error) {
	n := 0
	for _, f := range m.Files {
		if f.InPage(m.Version) {
			n++
		}
	}
	return parseRootPage(m, n, page, b)
}

// parseRootPage is ParseRootPage for a manifest of paged paged files.
func parseRootPage(m *Manifest, paged, page int, b []byte) ([]core.Hash, error) {
	if page < 0 || page >= len(m.RootPages) {
		return nil, fmt.Errorf("%w: page %d of %d", ErrBadRootPage, page, len(m.RootPages))
	}
	want := rootPageLen(paged, page)
	if len(b) != want*core.HashSize {
		return nil, fmt.Errorf("%w: page %d: %d bytes, want %d for %d roots", ErrBadRootPage, page, len(b), want*core.HashSize, want)
	}
	if h := core.SumSHA256(b); h != m.RootPages[page] {
		return nil, fmt.Errorf("%w: page %d hashes to %s, manifest says %s", ErrBadRootPage, page, h.Short(), m.RootPages[page].Short())
	}
	roots := make([]core.Hash, want)
	for i := range roots {
		copy(roots[i][:], b[i*core.HashSize:])
	}
	return roots, nil
}

// PageRoots turns an unsigned manifest whose files all carry their roots
// into a paged one: it sets Version to VersionPaged, moves the roots of
// files of more than one chunk into root pages, lists the pages' hashes in
// RootPages and returns the pages' bytes, which the publisher writes beside
// the manifest (at layout.RootPagePath of each hash). Sign it afterwards.
func (m *Manifest) PageRoots() [][]byte {
	m.Version = VersionPaged
	m.Signature = nil
	var roots []core.Hash
	for i := range m.Files {
		if f := &m.Files[i]; f.InPage(m.Version) {
			roots = append(roots, f.Root)
			f.Root = core.Hash{}
		}
	}
	var pages [][]byte
	m.RootPages = nil
	for p := range rootPageCount(len(roots)) {
		b := RootPageBytes(roots[p*RootsPerPage : p*RootsPerPage+rootPageLen(len(roots), p)])
		pages = append(pages, b)
		m.RootPages = append(m.RootPages, core.SumSHA256(b))
	}
	return pages
}

// RootTable gives every file's root of a manifest: inline roots at once,
// paged ones once their verified root page is added. Receivers keep one per
// content and add pages as readers need them. Safe for concurrent use.
type RootTable struct {
	m      *Manifest
	paged  int     // files whose roots are in pages
	pageOf []int32 // per file: its index among the paged files, or -1
	pages  []atomic.Pointer[[]core.Hash]
}

// NewRootTable returns the root table of a verified manifest.
func NewRootTable(m *Manifest) *RootTable {
	t := &RootTable{m: m, pages: make([]atomic.Pointer[[]core.Hash], len(m.RootPages))}
	if m.Paged() {
		t.pageOf = make([]int32, len(m.Files))
		for i, f := range m.Files {
			t.pageOf[i] = -1
			if f.InPage(m.Version) {
				t.pageOf[i] = int32(t.paged)
				t.paged++
			}
		}
	}
	return t
}

// Page says which root page holds file fi's root; ok is false when the
// root is inline.
func (t *RootTable) Page(fi int) (page int, ok bool) {
	if t.pageOf == nil || t.pageOf[fi] < 0 {
		return 0, false
	}
	page, _ = RootPageSlot(int(t.pageOf[fi]))
	return page, true
}

// PageSize is the length in bytes of root page page.
func (t *RootTable) PageSize(page int) int64 {
	return int64(rootPageLen(t.paged, page)) * core.HashSize
}

// HasPage reports whether root page page has been added.
func (t *RootTable) HasPage(page int) bool { return t.pages[page].Load() != nil }

// AddPage verifies b as root page page (ParseRootPage) and records its
// roots. Adding a page again is a no-op.
func (t *RootTable) AddPage(page int, b []byte) error {
	if page >= 0 && page < len(t.pages) && t.HasPage(page) {
		return nil
	}
	roots, err := parseRootPage(t.m, t.paged, page, b)
	if err != nil {
		return err
	}
	t.pages[page].CompareAndSwap(nil, &roots)
	return nil
}

// Root is file fi's root; ok is false while it is in a page not yet added.
func (t *RootTable) Root(fi int) (core.Hash, bool) {
	if t.pageOf == nil || t.pageOf[fi] < 0 {
		return t.m.Files[fi].Root, true
	}
	page, slot := RootPageSlot(int(t.pageOf[fi]))
	roots := t.pages[page].Load()
	if roots == nil {
		return core.Hash{}, false
	}
	return (*roots)[slot], true
}

// File is file fi with its root filled in; ok is false while the root is
// in a page not yet added (then Root is zero).
func (t *RootTable) File(fi int) (File, bool) {
	f := t.m.Files[fi]
	r, ok := t.Root(fi)
	f.Root = r
	return f, ok
}
