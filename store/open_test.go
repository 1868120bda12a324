package store

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

// TestOpenReadsInSlicesVerified: Open returns a chunk readable in slices
// through a scratch buffer much smaller than the chunk, byte-identical;
// with VerifyOnRead a damaged file is caught before any slice is read.
func TestOpenReadsInSlicesVerified(t *testing.T) {
	s := open(t, Config{VerifyOnRead: true})
	data, h := gen("open slices", 1<<20+123)
	mustPut(t, s, data, h)
	scratch := make([]byte, 4096)
	c, err := s.Open(h, scratch)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if c.Size() != int64(len(data)) {
		t.Fatalf("Size = %d, want %d", c.Size(), len(data))
	}
	var got bytes.Buffer
	if _, err := io.CopyBuffer(&got, io.NewSectionReader(c, 0, c.Size()), scratch); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("slices differ from the chunk (%d bytes read)", got.Len())
	}

	// A flipped byte: ErrCorrupt, the chunk dropped.
	b := bytes.Clone(data)
	b[len(b)-1] ^= 1
	if err := os.WriteFile(s.path(h), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Open(h, scratch); !errors.Is(err, ErrCorrupt) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Open of a damaged chunk = %v, want ErrCorrupt", err)
	}
	if s.Has(h) {
		t.Error("corrupt chunk still indexed")
	}
	if _, err := s.Open(h, scratch); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open after the drop = %v, want ErrNotFound", err)
	}
}

// Without VerifyOnRead, the first Open of a chunk after the store was
// opened still hashes it (the store's Open indexes without reading), so a
// chunk damaged while no store was open is never served in slices.
func TestOpenFirstReadAfterReopenVerifies(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	data, h := gen("open reopen", 300<<10)
	mustPut(t, s, data, h)
	s.Close()
	b := bytes.Clone(data)
	b[7] ^= 1
	if err := os.WriteFile(s.path(h), b, 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, Config{Dir: dir})
	if c, err := s2.Open(h, make([]byte, 4096)); !errors.Is(err, ErrCorrupt) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("first Open after reopen of a damaged chunk = %v, want ErrCorrupt", err)
	}
}
