package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"slices"
	"testing"
)

// readHaves reads every frame in b and returns the indexes they announce,
// in order, and how many frames there were; every frame must be a Have or,
// when batch is set, a Haves.
func readHaves(t *testing.T, b []byte, batch bool) ([]uint32, int) {
	t.Helper()
	r := NewReader(bytes.NewReader(b), 0)
	var got []uint32
	frames := 0
	for {
		m, err := r.Next()
		if err == io.EOF {
			return got, frames
		}
		if err != nil {
			t.Fatalf("frame %d: %v", frames, err)
		}
		frames++
		switch m := m.(type) {
		case *Have:
			if batch {
				t.Fatalf("frame %d is a single Have in a batched run", frames)
			}
			got = append(got, m.Index)
		case *Haves:
			if !batch {
				t.Fatalf("frame %d is a Haves for a peer without FlagHaveBatch", frames)
			}
			got = append(got, m.Indexes...)
		default:
			t.Fatalf("frame %d is %v", frames, m.Type())
		}
	}
}

func TestAppendHaves(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		batch  bool
		frames int
	}{
		{"none", 0, true, 0},
		{"one batched", 1, true, 1},
		{"a segment batched", 16, true, 1},
		{"exactly one frame's worth", MaxHaves, true, 1},
		{"split at MaxHaves", MaxHaves + 1, true, 2},
		{"three frames", 2*MaxHaves + 7, true, 3},
		{"a segment as singles", 16, false, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx := make([]uint32, tc.n)
			for k := range idx {
				idx[k] = uint32(3 * k) // gaps, as a rarest-first burst has
			}
			prefix := []byte("keep")
			b, frames, err := AppendHaves(slices.Clone(prefix), idx, tc.batch)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, prefix) {
				t.Fatal("AppendHaves overwrote what the buffer held")
			}
			got, read := readHaves(t, b[len(prefix):], tc.batch)
			if frames != tc.frames || read != tc.frames {
				t.Fatalf("%d indexes: %d frames appended, %d read; want %d", tc.n, frames, read, tc.frames)
			}
			if !slices.Equal(got, idx) {
				t.Fatalf("announced %v, want %v", got, idx)
			}
		})
	}
}

func TestAppendHavesRefusesUnsorted(t *testing.T) {
	b, frames, err := AppendHaves(nil, []uint32{4, 2}, true)
	if !errors.Is(err, ErrMalformed) || frames != 0 || len(b) != 0 {
		t.Fatalf("AppendHaves of unsorted indexes = %d bytes, %d frames, %v; want nothing and ErrMalformed", len(b), frames, err)
	}
}

// FuzzHaves builds a batch from arbitrary input, as a sender's queue would
// after sorting, and checks that AppendHaves never panics, that what it
// encodes decodes to exactly the batch (in batched and single frames alike),
// and that every Haves frame re-encodes to the bytes it was read from.
func FuzzHaves(f *testing.F) {
	f.Add([]byte{}, true)
	f.Add(u32(1, 2, 3, 40), true)
	f.Add(u32(7, 7, 3, MaxBitfield+9), false)
	f.Add(u32(seq(100, MaxHaves+3)...), true)
	f.Fuzz(func(t *testing.T, in []byte, batch bool) {
		var idx []uint32
		for len(in) >= 4 {
			idx = append(idx, binary.BigEndian.Uint32(in)%(MaxBitfield+16))
			in = in[4:]
		}
		slices.Sort(idx)
		idx = slices.Compact(idx)
		valid := len(idx) == 0 || idx[len(idx)-1] < MaxBitfield
		b, frames, err := AppendHaves(nil, idx, batch)
		if (err == nil) != valid {
			t.Fatalf("AppendHaves(%d indexes, last beyond the limit %v) err = %v", len(idx), !valid, err)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err %v is not ErrMalformed", err)
			}
			return
		}
		want := len(idx)
		if batch {
			want = (len(idx) + MaxHaves - 1) / MaxHaves
		}
		if frames != want {
			t.Fatalf("%d indexes made %d frames, want %d", len(idx), frames, want)
		}
		got, read := readHaves(t, b, batch)
		if read != frames || !slices.Equal(got, idx) {
			t.Fatalf("read back %d frames announcing %d indexes; want %d frames, %d indexes", read, len(got), frames, len(idx))
		}
		for len(b) > 0 {
			n := 4 + int(binary.BigEndian.Uint32(b))
			m, err := Unmarshal(b[:n])
			if err != nil {
				t.Fatal(err)
			}
			again, err := Marshal(m)
			if err != nil || !bytes.Equal(again, b[:n]) {
				t.Fatalf("frame re-encodes as %x, %v; want %x", again, err, b[:n])
			}
			if back, err := Unmarshal(again); err != nil || !reflect.DeepEqual(back, m) {
				t.Fatalf("second decode = %#v, %v; want %#v", back, err, m)
			}
			b = b[n:]
		}
	})
}
