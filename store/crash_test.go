package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// crashLeftovers is a store directory holding what an interrupted write or a
// torn disk write can leave behind, and what a reopened store must make of it.
type crashLeftovers struct {
	dir  string
	good map[core.Hash][]byte
	// damaged are chunk files with a plausible size but the wrong bytes:
	// only reading them shows it. The other planted files are caught by
	// Open from the listing alone.
	damaged []core.Hash
	gone    []core.Hash // planted files Open removes: never indexed
}

func plantCrashLeftovers(t *testing.T) crashLeftovers {
	t.Helper()
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	const n = 12
	cl := crashLeftovers{dir: dir, good: map[core.Hash][]byte{}}
	for i := range n {
		data, h := gen(fmt.Sprint("good ", i), 20_000+i)
		mustPut(t, s, data, h)
		cl.good[h] = data
	}
	s.Close()

	write := func(rel string, b []byte) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	name := func(h core.Hash) string { return filepath.Join(h.String()[:2], h.String()) }

	// A Put interrupted before its rename: partial data in a temp file.
	partial, ph := gen("interrupted", 30_000)
	write(tempPrefix+"123456", partial[:1000])
	write(tempPrefix+"789", nil)

	// A chunk cut short under its valid name (torn write that got renamed).
	trunc, th := gen("truncated", 30_000)
	write(name(th), trunc[:17_000])

	// A chunk with flipped bytes under its valid name.
	flip, fh := gen("flipped", 30_000)
	flip[12_345] ^= 0x40
	write(name(fh), flip)

	// A good chunk's file damaged in place, and one emptied.
	var victim, emptied core.Hash
	for h := range cl.good {
		if victim.IsZero() {
			victim = h
		} else if emptied.IsZero() {
			emptied = h
		}
	}
	damaged := bytes.Clone(cl.good[victim])
	damaged[0] ^= 0xff
	write(name(victim), damaged)
	write(name(emptied), nil)
	delete(cl.good, victim)
	delete(cl.good, emptied)
	cl.damaged = []core.Hash{th, fh, victim}

	// Files whose names are not chunk names, or sit in the wrong shard.
	ok, oh := gen("wrong shard", 500)
	wrongShard := "00"
	if oh.String()[:2] == "00" {
		wrongShard = "01"
	}
	write(filepath.Join(wrongShard, oh.String()), ok)
	write(filepath.Join("ab", "not-a-hash"), []byte("junk"))
	write(filepath.Join("ab", "AB"+oh.String()[2:]), ok) // upper case is not our name
	cl.gone = []core.Hash{emptied, ph, oh}
	return cl
}

// checkOpenRemoved checks what Open itself must remove: temp files, files
// that are not chunks, and the emptied chunk.
func (cl crashLeftovers) checkOpenRemoved(t *testing.T, s *Store) {
	t.Helper()
	st := s.Stats()
	if st.TempRemoved != 2 {
		t.Errorf("TempRemoved = %d, want 2", st.TempRemoved)
	}
	if st.CorruptAtScan != 4 { // three misnamed files, one emptied chunk
		t.Errorf("CorruptAtScan = %d, want 4", st.CorruptAtScan)
	}
	for _, h := range cl.gone {
		if s.Has(h) {
			t.Errorf("chunk %s indexed by Open", h.Short())
		}
	}
}

// checkClean checks the end state: exactly the good chunks, readable, and no
// damaged one left on disk or in the index.
func (cl crashLeftovers) checkClean(t *testing.T, s *Store) {
	t.Helper()
	for h, data := range cl.good {
		got, err := s.Get(h)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("good chunk %s: %d bytes, %v", h.Short(), len(got), err)
		}
	}
	for _, h := range append(slices.Clone(cl.damaged), cl.gone...) {
		if s.Has(h) {
			t.Errorf("bad chunk %s still indexed", h.Short())
		}
		if got, err := s.Get(h); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get bad chunk %s = %d bytes, %v; want ErrNotFound", h.Short(), len(got), err)
		}
	}
	files := onDisk(t, cl.dir)
	if len(files) != len(cl.good) {
		t.Errorf("%d files on disk, want the %d good chunks: %v", len(files), len(cl.good), files)
	}
	checkDiskMatchesIndex(t, s)
}

// TestCrashLeftoversRemovedOnOpen plants what an interrupted write or a torn
// disk write can leave behind, and checks that reopening keeps exactly the good
// chunks and never serves bytes that do not hash to their name: Open removes
// what the listing shows to be wrong, and the first read of a chunk with
// damaged bytes (VerifyOnRead off, as in shoal get) finds and removes it.
func TestCrashLeftoversRemovedOnOpen(t *testing.T) {
	cl := plantCrashLeftovers(t)
	s := open(t, Config{Dir: cl.dir})
	cl.checkOpenRemoved(t, s)
	removed := map[core.Hash]int{}
	var mu sync.Mutex
	s.OnRemove(func(h core.Hash) { mu.Lock(); removed[h]++; mu.Unlock() })
	for _, h := range cl.damaged {
		if got, err := s.Get(h); !errors.Is(err, ErrCorrupt) {
			t.Errorf("first Get of damaged chunk %s = %d bytes, %v; want ErrCorrupt", h.Short(), len(got), err)
		}
	}
	if st := s.Stats(); st.CorruptOnRead != int64(len(cl.damaged)) {
		t.Errorf("CorruptOnRead = %d, want %d", st.CorruptOnRead, len(cl.damaged))
	}
	for _, h := range cl.damaged {
		if removed[h] != 1 {
			t.Errorf("OnRemove heard of damaged chunk %s %d times, want once", h.Short(), removed[h])
		}
	}
	cl.checkClean(t, s)
}

// TestOpenOrdersLRUByMtime checks that after a restart the chunk written longest
// ago is evicted first.
func TestOpenOrdersLRUByMtime(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	const size = 1000
	var hs []core.Hash
	for i := range 5 {
		data, h := gen(fmt.Sprint("aged ", i), size)
		mustPut(t, s, data, h)
		hs = append(hs, h)
	}
	s.Close()
	// Chunk i gets age 5-i hours, except chunk 4, made the oldest.
	base, _ := os.Stat(dir)
	for i, h := range hs {
		age := 5 - i
		if i == 4 {
			age = 10
		}
		mt := base.ModTime().Add(-time.Duration(age) * time.Hour)
		if err := os.Chtimes(filepath.Join(dir, h.String()[:2], h.String()), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	// Quota of 5 chunks: one more Put evicts down to 4.25 chunks, so two go.
	s2 := open(t, Config{Dir: dir, Quota: 5 * size})
	data, h := gen("newcomer", size)
	mustPut(t, s2, data, h)
	want := map[core.Hash]bool{hs[4]: false, hs[0]: false, hs[1]: true, hs[2]: true, hs[3]: true, h: true}
	for h, w := range want {
		if s2.Has(h) != w {
			t.Errorf("Has(%s) = %v, want %v", h.Short(), !w, w)
		}
	}
}

// TestNoSyncChunksReadBack: a store that skips fsync writes the same bytes
// under the same names; what a crash could tear is what
// TestCrashLeftoversRemovedOnOpen shows Open removing.
func TestNoSyncChunksReadBack(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, NoSync: true, VerifyOnRead: true})
	data, h := gen("nosync", 50_000)
	mustPut(t, s, data, h)
	s.Close()
	s = open(t, Config{Dir: dir, NoSync: true, VerifyOnRead: true})
	got, err := s.Get(h)
	if err != nil || string(got) != string(data) {
		t.Fatalf("Get after reopen: %d bytes, %v", len(got), err)
	}
}
