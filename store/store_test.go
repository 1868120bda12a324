package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

func TestPutGetRoundtrip(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	sizes := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one byte", 1},
		{"min chunk", core.MinChunkSize},
		{"default chunk", core.DefaultChunkSize},
		{"odd tail", 12345},
	}
	var want int64
	for _, tc := range sizes {
		t.Run(tc.name, func(t *testing.T) {
			data, h := gen(tc.name, tc.size)
			if s.Has(h) {
				t.Fatal("Has before Put")
			}
			mustPut(t, s, data, h)
			mustPut(t, s, data, h) // second Put is a no-op
			want += int64(tc.size)
			if !s.Has(h) {
				t.Fatal("Has after Put = false")
			}
			got, err := s.Get(h)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Get = %d bytes, %v; want the %d put", len(got), err, len(data))
			}
			buf := make([]byte, tc.size+10)
			n, err := s.ReadInto(h, buf)
			if err != nil || !bytes.Equal(buf[:n], data) {
				t.Fatalf("ReadInto = %d, %v", n, err)
			}
			if tc.size > 0 {
				if _, err := s.ReadInto(h, make([]byte, tc.size-1)); !errors.Is(err, ErrShortBuffer) {
					t.Fatalf("ReadInto short buffer: err = %v, want ErrShortBuffer", err)
				}
			}
			fi, err := os.Stat(filepath.Join(dir, h.String()[:2], h.String()))
			if err != nil || fi.Size() != int64(tc.size) {
				t.Fatalf("chunk file: %v, %v", fi, err)
			}
		})
	}
	if b, n := s.Usage(); b != want || n != len(sizes) {
		t.Fatalf("Usage = %d, %d; want %d, %d", b, n, want, len(sizes))
	}
	st := s.Stats()
	if st.Puts != int64(len(sizes)) || st.Hits != 2*int64(len(sizes)) {
		t.Fatalf("Stats = %+v", st)
	}

	// Everything survives a restart.
	s.Close()
	s2 := open(t, Config{Dir: dir})
	for _, tc := range sizes {
		data, h := gen(tc.name, tc.size)
		if got, err := s2.Get(h); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s after reopen: %d bytes, %v", tc.name, len(got), err)
		}
	}
	checkDiskMatchesIndex(t, s2)
}

func TestGetAbsent(t *testing.T) {
	s := open(t, Config{})
	_, h := gen("never put", 100)
	if _, err := s.Get(h); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get = %v, want ErrNotFound", err)
	}
	if _, err := s.ReadInto(h, make([]byte, 100)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadInto = %v, want ErrNotFound", err)
	}
	if st := s.Stats(); st.Misses != 2 || st.Hits != 0 {
		t.Fatalf("Stats = %+v, want 2 misses", st)
	}
}

func TestHashMismatchStoresNothing(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	data, h := gen("honest", 1000)
	bad := bytes.Clone(data)
	bad[500] ^= 1
	err := s.Put(h, bad)
	if !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Put(tampered) = %v, want ErrHashMismatch", err)
	}
	if !strings.Contains(err.Error(), h.Short()) {
		t.Errorf("error %q does not name the chunk %s", err, h.Short())
	}
	if s.Has(h) {
		t.Fatal("Has after rejected Put")
	}
	if _, err := s.Get(h); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after rejected Put = %v", err)
	}
	if files := onDisk(t, dir); len(files) != 0 {
		t.Fatalf("rejected Put left files: %v", files)
	}
	if b, n := s.Usage(); b != 0 || n != 0 {
		t.Fatalf("Usage = %d, %d after rejected Put", b, n)
	}
}

func TestPutTooLarge(t *testing.T) {
	s := open(t, Config{})
	data := make([]byte, core.MaxChunkSize+1)
	if err := s.Put(core.SumSHA256(data), data); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put = %v, want ErrTooLarge", err)
	}
}

func TestDelete(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	data, h := gen("doomed", 4096)
	mustPut(t, s, data, h)
	s.Pin(h) // Delete is explicit: it overrides pins
	if err := s.Delete(h); err != nil {
		t.Fatal(err)
	}
	if s.Has(h) || len(onDisk(t, dir)) != 0 {
		t.Fatal("chunk still there after Delete")
	}
	if err := s.Delete(h); err != nil {
		t.Fatalf("Delete of absent chunk = %v, want nil", err)
	}
	mustPut(t, s, data, h) // and can come back
	if got, err := s.Get(h); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after re-Put: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no dir", Config{}},
		{"negative quota", Config{Quota: -1}},
		{"low above high", Config{HighWater: 0.5, LowWater: 0.6}},
		{"high above one", Config{HighWater: 1.5}},
		{"negative low", Config{LowWater: -0.1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "no dir" {
				tc.cfg.Dir = t.TempDir()
			}
			if _, err := Open(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("Open = %v, want ErrConfig", err)
			}
		})
	}
}

func TestSecondOpenOfSameDirRefused(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	if _, err := Open(Config{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if !InUse(dir) {
		t.Fatal("InUse = false while a store is open")
	}
	s.Close()
	if InUse(dir) {
		t.Fatal("InUse = true after Close")
	}
	s2, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestClosed(t *testing.T) {
	s := open(t, Config{})
	data, h := gen("late", 10)
	s.Close()
	if err := s.Put(h, data); !errors.Is(err, ErrClosed) {
		t.Errorf("Put = %v", err)
	}
	if _, err := s.Get(h); !errors.Is(err, ErrClosed) {
		t.Errorf("Get = %v", err)
	}
	if err := s.Delete(h); !errors.Is(err, ErrClosed) {
		t.Errorf("Delete = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
