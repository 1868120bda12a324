package store

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// TestVerifyOnReadCatchesLaterCorruption damages chunk files after Open, where
// only a read can notice.
func TestVerifyOnReadCatchesLaterCorruption(t *testing.T) {
	for _, tc := range []struct {
		name   string
		verify bool
		damage func([]byte) []byte
		caught bool // whether the read must report ErrCorrupt
	}{
		{"flipped byte, verify", true, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }, true},
		{"truncated, verify", true, func(b []byte) []byte { return b[:len(b)-1] }, true},
		{"truncated, no verify", false, func(b []byte) []byte { return b[:len(b)-1] }, true},     // size check is free
		{"flipped byte, no verify", false, func(b []byte) []byte { b[7] ^= 1; return b }, false}, // what VerifyOnRead is for
	} {
		for _, readInto := range []bool{false, true} {
			name := tc.name
			if readInto {
				name += ", ReadInto"
			}
			t.Run(name, func(t *testing.T) {
				s := open(t, Config{VerifyOnRead: tc.verify})
				data, h := gen(tc.name, 50_000)
				mustPut(t, s, data, h)
				p := s.path(h)
				if err := os.WriteFile(p, tc.damage(bytes.Clone(data)), 0o644); err != nil {
					t.Fatal(err)
				}
				var got []byte
				var err error
				if readInto {
					buf := make([]byte, len(data))
					var n int
					n, err = s.ReadInto(h, buf)
					got = buf[:n]
				} else {
					got, err = s.Get(h)
				}
				if !tc.caught {
					if err != nil || bytes.Equal(got, data) {
						t.Fatalf("unverified read = %v, changed %v; the test no longer damages the chunk", err, !bytes.Equal(got, data))
					}
					return
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("read = %d bytes, %v; want ErrCorrupt", len(got), err)
				}
				if s.Has(h) {
					t.Error("corrupt chunk still indexed")
				}
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("corrupt chunk file still on disk: %v", err)
				}
				if st := s.Stats(); st.CorruptOnRead != 1 || st.Hits != 0 {
					t.Errorf("Stats = %+v, want 1 corrupt on read, no hits", st)
				}
				if b, n := s.Usage(); b != 0 || n != 0 {
					t.Errorf("Usage = %d, %d after drop", b, n)
				}
				// The chunk can be fetched again and served.
				mustPut(t, s, data, h)
				if got, err := s.Get(h); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("Get after re-Put: %v", err)
				}
			})
		}
	}
}

// TestFileRemovedBehindOurBack: a chunk deleted outside the store is a miss, and
// the index forgets it.
func TestFileRemovedBehindOurBack(t *testing.T) {
	s := open(t, Config{})
	data, h := gen("vanishing", 1000)
	mustPut(t, s, data, h)
	if err := os.Remove(s.path(h)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(h); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get = %v, want ErrNotFound", err)
	}
	if b, n := s.Usage(); s.Has(h) || b != 0 || n != 0 {
		t.Fatalf("index still has the chunk: Has %v, Usage %d, %d", s.Has(h), b, n)
	}
}
