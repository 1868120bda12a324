package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzUnmarshal checks that decoding is canonical and stable: every accepted
// frame re-encodes to exactly its input and decodes again to the same
// message, the Reader agrees with Unmarshal, and every rejection is one of
// the package's sentinels.
func FuzzUnmarshal(f *testing.F) {
	for _, tc := range roundTripCases() {
		if d, ok := tc.m.(*Data); ok && len(d.Payload) > 64 {
			continue // keep the seed corpus small
		}
		b, err := Marshal(tc.m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tc := range malformedCases {
		if len(tc.frame) <= 4096 {
			f.Add(tc.frame)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Unmarshal(in)
		if err != nil {
			if m != nil {
				t.Fatalf("Unmarshal returned a message with error %v", err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) &&
				!errors.Is(err, ErrUnknownType) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v matches no sentinel", err)
			}
			return
		}
		out, err := Marshal(m)
		if err != nil {
			t.Fatalf("Marshal of decoded %T: %v", m, err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("not canonical: %x re-encodes as %x", in, out)
		}
		again, err := Unmarshal(out)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("second decode = %#v, %v; want %#v", again, err, m)
		}
		var buf bytes.Buffer
		if err := WriteMessage(&buf, m); err != nil || !bytes.Equal(buf.Bytes(), in) {
			t.Fatalf("WriteMessage = %x, %v; want %x", buf.Bytes(), err, in)
		}
		got, err := NewReader(bytes.NewReader(in), 0).Next()
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("Reader.Next = %#v, %v; want %#v", got, err, m)
		}
	})
}

// FuzzBitfield checks BitfieldFromBytes against a plain []bool model: it
// accepts exactly the canonical encodings, and Set/Clear/Count/Has stay
// consistent with the model and with the encoding.
func FuzzBitfield(f *testing.F) {
	f.Add([]byte{}, uint16(0), []byte{})
	f.Add([]byte{0x80}, uint16(1), []byte{0, 0})
	f.Add([]byte{0xff, 0xc0}, uint16(10), []byte{3, 9, 200})
	f.Add([]byte{0xff, 0xe0}, uint16(10), []byte{1})
	f.Add(bytes.Repeat([]byte{0xa5}, 9), uint16(72), []byte{71, 70, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte, n16 uint16, ops []byte) {
		n := int(n16)
		bf, err := BitfieldFromBytes(b, n)
		canonical := len(b) == (n+7)/8 && (n%8 == 0 || b[len(b)-1]&(0xff>>(n%8)) == 0)
		if canonical != (err == nil) {
			t.Fatalf("BitfieldFromBytes(%x, %d) err = %v, canonical = %v", b, n, err, canonical)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err %v is not ErrMalformed", err)
			}
			return
		}
		model := make([]bool, n)
		for i := range model {
			model[i] = b[i/8]&(0x80>>(i%8)) != 0
		}
		for k, op := range ops {
			if n == 0 {
				break
			}
			i := (int(op) * (k + 1)) % n
			if op&1 == 0 {
				if bf.Set(i) == model[i] {
					t.Fatalf("Set(%d) change report wrong", i)
				}
				model[i] = true
			} else {
				if bf.Clear(i) != model[i] {
					t.Fatalf("Clear(%d) change report wrong", i)
				}
				model[i] = false
			}
		}
		count := 0
		for i, v := range model {
			if bf.Has(i) != v {
				t.Fatalf("Has(%d) = %v, model %v", i, !v, v)
			}
			if v {
				count++
			}
		}
		if bf.Count() != count || bf.Len() != n || bf.Complete() != (count == n) {
			t.Fatalf("Count %d Len %d Complete %v; model count %d of %d", bf.Count(), bf.Len(), bf.Complete(), count, n)
		}
		again, err := BitfieldFromBytes(bf.Bytes(), n)
		if err != nil || !again.Equal(bf) {
			t.Fatalf("re-decode of Bytes: %v, equal %v", err, err == nil && again.Equal(bf))
		}
	})
}
