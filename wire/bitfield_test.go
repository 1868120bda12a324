package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestBitfieldSetHasClear(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 65, 1000} {
		f := NewBitfield(n)
		if f.Len() != n || f.Count() != 0 || f.Complete() != (n == 0) {
			t.Fatalf("NewBitfield(%d): len %d count %d complete %v", n, f.Len(), f.Count(), f.Complete())
		}
		for i := 0; i < n; i += 3 {
			if !f.Set(i) || f.Set(i) {
				t.Fatalf("n=%d: Set(%d) should report a change only the first time", n, i)
			}
		}
		want := (n + 2) / 3
		if f.Count() != want {
			t.Fatalf("n=%d: Count = %d, want %d", n, f.Count(), want)
		}
		for i := -1; i <= n; i++ {
			if got := f.Has(i); got != (i >= 0 && i < n && i%3 == 0) {
				t.Fatalf("n=%d: Has(%d) = %v", n, i, got)
			}
		}
		if n > 0 {
			if !f.Clear(0) || f.Clear(0) || f.Has(0) || f.Count() != want-1 {
				t.Fatalf("n=%d: Clear(0) misbehaved", n)
			}
		}
		f.SetAll()
		if !f.Complete() || f.Count() != n {
			t.Fatalf("n=%d: after SetAll count %d, complete %v", n, f.Count(), f.Complete())
		}
		// SetAll must leave spare bits clear, or the bitfield would not encode.
		if _, err := BitfieldFromBytes(f.Bytes(), n); err != nil {
			t.Fatalf("n=%d: SetAll produced a non-canonical encoding: %v", n, err)
		}
	}
}

func TestBitfieldLayout(t *testing.T) {
	f := NewBitfield(12)
	f.Set(0)
	f.Set(9)
	f.Set(11)
	if got, want := f.Bytes(), []byte{0x80, 0x50}; !bytes.Equal(got, want) {
		t.Fatalf("Bytes = %x, want %x", got, want)
	}
}

func TestBitfieldFromBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		n    int
		ok   bool
	}{
		{"empty", []byte{}, 0, true},
		{"nil empty", nil, 0, true},
		{"exact byte", []byte{0xff}, 8, true},
		{"partial byte clean", []byte{0xff, 0xc0}, 10, true},
		{"spare bit set", []byte{0xff, 0xe0}, 10, false},
		{"lowest spare bit set", []byte{0x01}, 7, false},
		{"too short", []byte{0}, 9, false},
		{"too long", []byte{0, 0}, 8, false},
		{"negative", nil, -1, false},
		{"over max", make([]byte, MaxBitfield/8+1), MaxBitfield + 1, false},
	} {
		f, err := BitfieldFromBytes(tc.b, tc.n)
		if tc.ok != (err == nil) {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: err = %v, want ErrMalformed", tc.name, err)
			}
			continue
		}
		if f.Len() != tc.n || !bytes.Equal(f.Bytes(), tc.b) {
			t.Errorf("%s: got %v %x", tc.name, f, f.Bytes())
		}
	}
}

func TestBitfieldMaxSize(t *testing.T) {
	f := NewBitfield(MaxBitfield)
	f.Set(MaxBitfield - 1)
	b, err := Marshal(&BitfieldUpdate{Bits: f})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if g := m.(*BitfieldUpdate).Bits; !g.Equal(f) || !g.Has(MaxBitfield-1) {
		t.Fatal("largest bitfield did not round-trip")
	}
}

func TestBitfieldCopiesAreIndependent(t *testing.T) {
	src := []byte{0x80}
	f, err := BitfieldFromBytes(src, 8)
	if err != nil {
		t.Fatal(err)
	}
	src[0] = 0xff
	if f.Count() != 1 {
		t.Fatal("BitfieldFromBytes kept a reference to its input")
	}
	g := f.Clone()
	g.Set(1)
	if f.Has(1) || !g.Has(1) || f.Equal(g) {
		t.Fatal("Clone shares bits with its source")
	}
	f.Bytes()[0] = 0
	if !f.Has(0) {
		t.Fatal("Bytes exposed the internal slice")
	}
}

func TestBitfieldEqual(t *testing.T) {
	var nilBF *Bitfield
	if !nilBF.Equal(NewBitfield(0)) || !NewBitfield(0).Equal(nilBF) {
		t.Error("nil and empty bitfields should be equal")
	}
	if NewBitfield(8).Equal(NewBitfield(9)) {
		t.Error("different lengths compare equal")
	}
	if !bitsOf(20, 3, 17).Equal(bitsOf(20, 17, 3)) || bitsOf(20, 3).Equal(bitsOf(20, 4)) {
		t.Error("Equal compares bits wrongly")
	}
}

func TestBitfieldNil(t *testing.T) {
	var f *Bitfield
	if f.Len() != 0 || f.Count() != 0 || !f.Complete() || f.Has(0) || len(f.Bytes()) != 0 || f.Clone().Len() != 0 {
		t.Fatal("nil bitfield should read as empty")
	}
}

func TestBitfieldPanicsOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"Set past end", func() { NewBitfield(8).Set(8) }},
		{"Set negative", func() { NewBitfield(8).Set(-1) }},
		{"Clear past end", func() { NewBitfield(3).Clear(3) }},
		{"New negative", func() { NewBitfield(-1) }},
		{"New over max", func() { NewBitfield(MaxBitfield + 1) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: did not panic", tc.name)
				}
			}()
			tc.fn()
		}()
	}
}

// FuzzBitfieldForms checks the wire form of bitfields against a plain
// model: the encoding is the shorter of raw and runs (raw on a tie), with
// the runs a plain loop finds, and it decodes to the same bits. The
// pattern's bits, repeated, fill a bitfield of n bits; stretch repeats each
// of them, so long runs are common.
func FuzzBitfieldForms(f *testing.F) {
	f.Add([]byte{}, uint32(0), uint8(0))
	f.Add([]byte{0x00}, uint32(1000), uint8(7))
	f.Add([]byte{0xff}, uint32(17), uint8(0))
	f.Add([]byte{0x0f, 0xf0}, uint32(100_000), uint8(200))
	f.Add([]byte{0xa5, 0x5a}, uint32(4096), uint8(0))
	f.Fuzz(func(t *testing.T, pattern []byte, n32 uint32, stretch uint8) {
		n := int(n32 % (1 << 20))
		bit := func(i int) bool {
			if len(pattern) == 0 {
				return false
			}
			i /= int(stretch) + 1
			return pattern[(i/8)%len(pattern)]&(0x80>>(i%8)) != 0
		}
		bf := NewBitfield(n)
		var runs []int
		for i := 0; i < n; i++ {
			if bit(i) {
				bf.Set(i)
			}
			switch {
			case i == 0 && bit(0):
				runs = append(runs, 0, 1)
			case i == 0 || bit(i) != bit(i-1):
				runs = append(runs, 1)
			default:
				runs[len(runs)-1]++
			}
		}
		runsBytes := 0
		for _, r := range runs {
			runsBytes += len(binary.AppendUvarint(nil, uint64(r)))
		}
		raw := (n + 7) / 8
		b, err := Marshal(&BitfieldUpdate{Bits: bf})
		if err != nil {
			t.Fatal(err)
		}
		if body, want := len(b)-5, 5+min(raw, runsBytes); body != want {
			t.Fatalf("%d bits in %d runs (%d bytes, %d raw): body of %d bytes, want %d", n, len(runs), runsBytes, raw, body, want)
		}
		if form := b[9]; n > 0 && (form == bitsRuns) != (runsBytes < raw) {
			t.Fatalf("form %d for %d runs bytes and %d raw", form, runsBytes, raw)
		}
		m, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		if got := m.(*BitfieldUpdate).Bits; !got.Equal(bf) {
			t.Fatalf("decoded %v, want %v", got, bf)
		}
	})
}
