package manifest

import (
	"errors"
	"fmt"

	"github.com/shoal-cdn/shoal/core"
)

// RootsPerPage is how many roots a full root page holds (4 KiB of them);
// the last page of a content holds the rest.
const RootsPerPage = 128

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
	if page < 0 || page >= len(m.RootPages) {
		return nil, fmt.Errorf("%w: page %d of %d", ErrBadRootPage, page, len(m.RootPages))
	}
	n := 0
	for _, f := range m.Files {
		if f.InPage(m.Version) {
			n++
		}
	}
	want := rootPageLen(n, page)
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
