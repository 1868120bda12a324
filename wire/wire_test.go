package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

// frame builds a raw frame from a type and body parts, for malformed cases.
func frame(t Type, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(body)))
	b = append(b, byte(t))
	return append(b, body...)
}

func u32(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

// seq returns the n indexes from, from+1, ...
func seq(from, n int) []uint32 {
	out := make([]uint32, n)
	for k := range out {
		out[k] = uint32(from + k)
	}
	return out
}

// payload returns n deterministic bytes derived from seed, so a failure reproduces.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func bitsOf(n int, set ...int) *Bitfield {
	f := NewBitfield(n)
	for _, i := range set {
		f.Set(i)
	}
	return f
}

// bitsRun is an n-bit bitfield with bits [from, to) set.
func bitsRun(n, from, to int) *Bitfield {
	f := NewBitfield(n)
	for i := from; i < to; i++ {
		f.Set(i)
	}
	return f
}

func testContent() core.ContentID { return core.ContentID(core.SumSHA256([]byte("content"))) }

func roundTripCases() []struct {
	name string
	m    Message
} {
	return []struct {
		name string
		m    Message
	}{
		{"handshake", &Handshake{Content: testContent(), Flags: FlagSeeder, Client: "shoal/0.1", Bits: bitsOf(13, 0, 5, 12)}},
		{"handshake empty bitfield", &Handshake{Content: testContent(), Bits: NewBitfield(0)}},
		{"handshake fetch-all", &Handshake{Content: testContent(), Flags: FlagFetchAll, Client: "shoal/0.1", Bits: bitsOf(9, 3)}},
		{"handshake unknown flags kept", &Handshake{Flags: 0xfc, Client: strings.Repeat("é", 32), Bits: bitsOf(8, 7)}},
		{"keep-alive", &KeepAlive{}},
		{"choke", &Choke{}},
		{"unchoke", &Unchoke{}},
		{"interested", &Interested{}},
		{"not-interested", &NotInterested{}},
		{"have", &Have{Index: 41}},
		{"have max index", &Have{Index: 1<<32 - 1}},
		{"dont-have", &DontHave{Index: 41}},
		{"dont-have zero", &DontHave{Index: 0}},
		{"dont-have max index", &DontHave{Index: 1<<32 - 1}},
		{"haves one", &Haves{Indexes: []uint32{0}}},
		{"haves burst", &Haves{Indexes: []uint32{16, 17, 18, 19, 31, 900}}},
		{"haves max", &Haves{Indexes: seq(MaxBitfield-MaxHaves, MaxHaves)}},
		{"handshake have-batch flag", &Handshake{Content: testContent(), Flags: FlagHaveBatch | FlagFetchAll, Client: "shoal/1", Bits: bitsOf(4, 2)}},
		{"token", &Token{Token: "AQRrZXk"}},
		{"token empty", &Token{}},
		{"token max", &Token{Token: strings.Repeat("A", MaxToken)}},
		{"handshake token flag", &Handshake{Content: testContent(), Flags: FlagToken, Client: "shoal/1", Bits: NewBitfield(0)}},
		{"bitfield", &BitfieldUpdate{Bits: bitsOf(1000, 0, 999, 512)}},
		{"bitfield full", &BitfieldUpdate{Bits: func() *Bitfield { f := NewBitfield(17); f.SetAll(); return f }()}},
		{"bitfield runs", &BitfieldUpdate{Bits: bitsRun(100_000, 4_000, 9_000)}},
		{"bitfield runs from the start", &BitfieldUpdate{Bits: bitsRun(100_000, 0, 9_000)}},
		{"bitfield runs to the end", &BitfieldUpdate{Bits: bitsRun(100_000, 9_000, 100_000)}},
		{"bitfield empty of many", &BitfieldUpdate{Bits: bitsOf(MaxBitfield)}},
		{"handshake runs", &Handshake{Content: testContent(), Client: "shoal/1", Bits: bitsRun(27_004, 300, 316)}},
		{"request", &Request{Index: 3, Offset: 0, Length: core.DefaultChunkSize}},
		{"request max", &Request{Index: 1<<32 - 1, Offset: MaxPayload - 1, Length: 1}},
		{"cancel", &Cancel{Index: 9, Offset: 16 << 10, Length: 16 << 10}},
		{"reject", &Reject{Index: 9, Offset: 0, Length: 100, Reason: ReasonChoked}},
		{"reject unknown reason kept", &Reject{Index: 1, Length: 1, Reason: 200}},
		{"data small", &Data{Index: 2, Offset: 10, Payload: []byte("hello")}},
		{"data chunk", &Data{Index: 7, Payload: payload(1, core.DefaultChunkSize)}},
		{"data ends at max", &Data{Index: 7, Offset: MaxPayload - 3, Payload: []byte{1, 2, 3}}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Marshal(tc.m)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(got, tc.m) {
				t.Fatalf("Unmarshal = %#v, want %#v", got, tc.m)
			}

			var buf bytes.Buffer
			if err := WriteMessage(&buf, tc.m); err != nil {
				t.Fatalf("WriteMessage: %v", err)
			}
			if !bytes.Equal(buf.Bytes(), b) {
				t.Fatalf("WriteMessage wrote %d bytes differing from Marshal's %d", buf.Len(), len(b))
			}
			r := NewReader(&buf, 0)
			got, err = r.Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if !reflect.DeepEqual(got, tc.m) {
				t.Fatalf("Next = %#v, want %#v", got, tc.m)
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("Next after last frame = %v, want io.EOF", err)
			}
		})
	}
}

// TestGoldenEncoding pins the byte layout the package comment specifies.
func TestGoldenEncoding(t *testing.T) {
	for _, tc := range []struct {
		m    Message
		want string
	}{
		{&KeepAlive{}, "00000001 02"},
		{&Choke{}, "00000001 03"},
		{&Have{Index: 0x01020304}, "00000005 07 01020304"},
		{&Request{Index: 1, Offset: 2, Length: 3}, "0000000d 09 00000001 00000002 00000003"},
		{&Cancel{Index: 1, Offset: 2, Length: 3}, "0000000d 0a 00000001 00000002 00000003"},
		{&Reject{Index: 1, Offset: 2, Length: 3, Reason: ReasonBusy}, "0000000e 0b 00000001 00000002 00000003 03"},
		{&Data{Index: 5, Offset: 6, Payload: []byte{0xaa, 0xbb}}, "0000000b 0c 00000005 00000006 aabb"},
		{&DontHave{Index: 0x01020304}, "00000005 0d 01020304"},
		{&Haves{Indexes: []uint32{3, 0x010203}}, "00000009 0f 00000003 00010203"},
		// Runs [0 1 8 1] take 4 bytes, raw 2: raw.
		{&BitfieldUpdate{Bits: bitsOf(10, 0, 9)}, "00000008 08 0000000a 00 8040"},
		// Runs [100 100 800]: 4 bytes against 125 raw.
		{&BitfieldUpdate{Bits: bitsRun(1000, 100, 200)}, "0000000a 08 000003e8 01 64 64 a006"},
		// Everything: runs [0 17], 2 bytes against 3.
		{&BitfieldUpdate{Bits: bitsRun(17, 0, 17)}, "00000008 08 00000011 01 00 11"},
		// Nothing: runs [20], 1 byte against 3.
		{&BitfieldUpdate{Bits: bitsOf(20)}, "00000007 08 00000014 01 14"},
		{&Handshake{Flags: FlagSeeder, Client: "x", Bits: bitsOf(3, 1)},
			"00000030 01 53484f4c 0002 01" + strings.Repeat("00", 32) + " 01 78 00000003 00 40"},
		{&Handshake{Flags: FlagSeeder | FlagFetchAll, Bits: bitsOf(0)},
			"0000002e 01 53484f4c 0002 03" + strings.Repeat("00", 32) + " 00 00000000 00"},
		{&Handshake{Flags: FlagHaveBatch, Bits: bitsOf(0)},
			"0000002e 01 53484f4c 0002 08" + strings.Repeat("00", 32) + " 00 00000000 00"},
	} {
		b, err := Marshal(tc.m)
		if err != nil {
			t.Fatalf("Marshal(%T): %v", tc.m, err)
		}
		if got, want := hex.EncodeToString(b), strings.ReplaceAll(tc.want, " ", ""); got != want {
			t.Errorf("Marshal(%T) = %s, want %s", tc.m, got, want)
		}
	}
}

func TestNilBitfieldEncodesEmpty(t *testing.T) {
	b, err := Marshal(&BitfieldUpdate{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.(*BitfieldUpdate).Bits; got == nil || got.Len() != 0 {
		t.Fatalf("decoded bits = %v, want empty non-nil", got)
	}
}

var hsFixed = func() []byte {
	c := testContent()
	return bytes.Join([][]byte{[]byte(Magic), {0, Version, 0}, c[:]}, nil)
}()

// malformedCases are frames every decoder must reject, with the sentinel they
// must match. readErr, when set, is what a Reader reports instead (a
// truncation reads as an unexpected end of stream).
var malformedCases = []struct {
	name    string
	frame   []byte
	want    error
	readErr error
}{
	{"truncated header", []byte{0, 0, 0}, ErrMalformed, io.ErrUnexpectedEOF},
	{"header without type", []byte{0, 0, 0, 1}, ErrMalformed, io.ErrUnexpectedEOF},
	{"truncated body", frame(TypeHave, []byte{0, 0, 0, 1})[:7], ErrMalformed, io.ErrUnexpectedEOF},
	{"truncated data payload", frame(TypeData, u32(1, 0), payload(2, 100))[:60], ErrMalformed, io.ErrUnexpectedEOF},
	{"zero length", []byte{0, 0, 0, 0}, ErrMalformed, nil},
	{"length beyond max", u32(MaxFrame + 1), ErrFrameTooLarge, nil},
	{"length 4 GiB", u32(0xffffffff), ErrFrameTooLarge, nil},
	{"unknown type 0", frame(0), ErrUnknownType, nil},
	{"unknown type: first undefined", frame(typeEnd, []byte{1, 2}), ErrUnknownType, nil},
	{"unknown type 255", frame(255), ErrUnknownType, nil},
	{"choke with body", frame(TypeChoke, []byte{0}), ErrMalformed, nil},
	{"have short", frame(TypeHave, []byte{0, 0, 1}), ErrMalformed, nil},
	{"have trailing byte", frame(TypeHave, u32(1), []byte{0}), ErrMalformed, nil},
	{"dont-have empty", frame(TypeDontHave), ErrMalformed, nil},
	{"dont-have short", frame(TypeDontHave, []byte{0, 0, 1}), ErrMalformed, nil},
	{"dont-have trailing byte", frame(TypeDontHave, u32(1), []byte{0}), ErrMalformed, nil},
	{"haves empty", frame(TypeHaves), ErrMalformed, nil},
	{"haves short", frame(TypeHaves, []byte{0, 0, 1}), ErrMalformed, nil},
	{"haves trailing byte", frame(TypeHaves, u32(1, 2), []byte{0}), ErrMalformed, nil},
	{"haves descending", frame(TypeHaves, u32(5, 4)), ErrMalformed, nil},
	{"haves duplicate", frame(TypeHaves, u32(1, 7, 7)), ErrMalformed, nil},
	{"haves index beyond any content", frame(TypeHaves, u32(2, MaxBitfield)), ErrMalformed, nil},
	{"haves too many", frame(TypeHaves, u32(seq(0, MaxHaves+1)...)), ErrMalformed, nil},
	{"token too long", frame(TypeToken, []byte(strings.Repeat("A", MaxToken+1))), ErrMalformed, nil},
	{"token with a space", frame(TypeToken, []byte("AB CD")), ErrMalformed, nil},
	{"token with a newline", frame(TypeToken, []byte("ABCD\n")), ErrMalformed, nil},
	{"request short", frame(TypeRequest, u32(1, 2), []byte{0, 0, 0}), ErrMalformed, nil},
	{"request zero length", frame(TypeRequest, u32(1, 0, 0)), ErrMalformed, nil},
	{"request past chunk", frame(TypeRequest, u32(1, MaxPayload, 1)), ErrMalformed, nil},
	{"request offset overflow", frame(TypeRequest, u32(1, 0xffffffff, 2)), ErrMalformed, nil},
	{"cancel too long", frame(TypeCancel, u32(1, 0, MaxPayload+1)), ErrMalformed, nil},
	{"reject without reason", frame(TypeReject, u32(1, 0, 5)), ErrMalformed, nil},
	{"reject zero length", frame(TypeReject, u32(1, 0, 0), []byte{1}), ErrMalformed, nil},
	{"data without payload", frame(TypeData, u32(1, 0)), ErrMalformed, nil},
	{"data past chunk", frame(TypeData, u32(1, MaxPayload-1), []byte{1, 2}), ErrMalformed, nil},
	{"bitfield without count", frame(TypeBitfield, []byte{0, 0}), ErrMalformed, nil},
	{"bitfield oversize count", frame(TypeBitfield, u32(MaxBitfield+1), make([]byte, 8)), ErrMalformed, nil},
	{"bitfield without form", frame(TypeBitfield, u32(0)), ErrMalformed, nil},
	{"bitfield too few bytes", frame(TypeBitfield, u32(17), []byte{bitsRaw, 0xaa, 0x55}), ErrMalformed, nil},
	{"bitfield trailing byte", frame(TypeBitfield, u32(16), []byte{bitsRaw, 0xaa, 0x55, 0}), ErrMalformed, nil},
	{"bitfield spare bit set", frame(TypeBitfield, u32(10), []byte{bitsRaw, 0xaa, 0x20}), ErrMalformed, nil},
	{"bitfield unknown form", frame(TypeBitfield, u32(16), []byte{2, 0xaa, 0x55}), ErrMalformed, nil},
	{"bitfield raw that runs shorten", frame(TypeBitfield, u32(64), []byte{bitsRaw}, make([]byte, 8)), ErrMalformed, nil},
	{"bitfield runs not shorter than raw", frame(TypeBitfield, u32(16), []byte{bitsRuns, 0, 16}), ErrMalformed, nil},
	{"bitfield runs past the end", frame(TypeBitfield, u32(100), []byte{bitsRuns, 50, 60}), ErrMalformed, nil},
	{"bitfield runs short of the end", frame(TypeBitfield, u32(100), []byte{bitsRuns, 50, 20}), ErrMalformed, nil},
	{"bitfield empty run", frame(TypeBitfield, u32(100), []byte{bitsRuns, 50, 0, 50}), ErrMalformed, nil},
	{"bitfield run not minimal", frame(TypeBitfield, u32(1000), []byte{bitsRuns, 0x80, 0x00, 0xe8, 0x07}), ErrMalformed, nil},
	{"bitfield run truncated", frame(TypeBitfield, u32(1000), []byte{bitsRuns, 0x80}), ErrMalformed, nil},
	{"bitfield no runs", frame(TypeBitfield, u32(1000), []byte{bitsRuns}), ErrMalformed, nil},
	{"bitfield body over max", frame(TypeBitfield, u32(MaxBitfield), make([]byte, MaxBitfield/8+1)), ErrMalformed, nil},
	{"handshake bad magic", frame(TypeHandshake, []byte("XHOL"), hsFixed[4:], []byte{0}, u32(0)), ErrVersion, nil},
	{"handshake version 3", frame(TypeHandshake, []byte(Magic), []byte{0, 3}, hsFixed[6:], []byte{0}, u32(0), []byte{bitsRaw}), ErrVersion, nil},
	{"handshake version 0", frame(TypeHandshake, []byte(Magic), []byte{0, 0}, hsFixed[6:], []byte{0}, u32(0)), ErrVersion, nil},
	{"handshake short", frame(TypeHandshake, hsFixed, []byte{0}), ErrMalformed, nil},
	{"handshake client too long", frame(TypeHandshake, hsFixed, []byte{65}, make([]byte, 65), u32(0)), ErrMalformed, nil},
	{"handshake client past end", frame(TypeHandshake, hsFixed, []byte{9}, []byte("ab"), u32(0)), ErrMalformed, nil},
	{"handshake client not utf-8", frame(TypeHandshake, hsFixed, []byte{2, 0xff, 0xfe}, u32(0)), ErrMalformed, nil},
	{"handshake bitfield trailing", frame(TypeHandshake, hsFixed, []byte{0}, u32(8), []byte{bitsRaw, 0x55, 2}), ErrMalformed, nil},
	{"handshake bitfield spare bits", frame(TypeHandshake, hsFixed, []byte{0}, u32(1), []byte{bitsRaw, 0x40}), ErrMalformed, nil},
	{"handshake of version 1", frame(TypeHandshake, []byte(Magic), []byte{0, 1}, hsFixed[6:], []byte{0}, u32(8), []byte{0x55}), ErrVersion, nil},
}

func TestUnmarshalRejects(t *testing.T) {
	for _, tc := range malformedCases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Unmarshal(tc.frame)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Unmarshal = %v, %v; want %v", m, err, tc.want)
			}
		})
	}
}

func TestReaderRejects(t *testing.T) {
	for _, tc := range malformedCases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if tc.readErr != nil {
				want = tc.readErr
			}
			m, err := NewReader(bytes.NewReader(tc.frame), 0).Next()
			if !errors.Is(err, want) {
				t.Fatalf("Next = %v, %v; want %v", m, err, want)
			}
		})
	}
}

func TestUnmarshalLengthMismatch(t *testing.T) {
	good := frame(TypeHave, u32(1))
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"trailing bytes after frame", append(bytes.Clone(good), 0)},
		{"length says more than follows", good[:len(good)-1]},
		{"two frames", append(bytes.Clone(good), good...)},
	} {
		if _, err := Unmarshal(tc.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tc.name, err)
		}
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Message
	}{
		{"nil", nil},
		{"client too long", &Handshake{Client: strings.Repeat("a", MaxClient+1)}},
		{"client not utf-8", &Handshake{Client: "\xff"}},
		{"request zero length", &Request{Index: 1}},
		{"cancel past chunk", &Cancel{Offset: MaxPayload, Length: 1}},
		{"reject overflow", &Reject{Offset: 0xffffffff, Length: 0xffffffff}},
		{"data empty", &Data{}},
		{"haves empty", &Haves{}},
		{"haves too many", &Haves{Indexes: seq(0, MaxHaves+1)}},
		{"haves unsorted", &Haves{Indexes: []uint32{2, 1}}},
		{"haves duplicate", &Haves{Indexes: []uint32{2, 2}}},
		{"haves index beyond any content", &Haves{Indexes: []uint32{MaxBitfield}}},
		{"data past chunk", &Data{Offset: 1, Payload: make([]byte, MaxPayload)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Marshal(tc.m); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Marshal err = %v, want ErrMalformed", err)
			}
			var buf bytes.Buffer
			if err := WriteMessage(&buf, tc.m); !errors.Is(err, ErrMalformed) {
				t.Fatalf("WriteMessage err = %v, want ErrMalformed", err)
			}
			if buf.Len() != 0 {
				t.Fatalf("WriteMessage wrote %d bytes of an invalid message", buf.Len())
			}
		})
	}
}

func TestTypeAndReasonStrings(t *testing.T) {
	for ty := TypeHandshake; ty < typeEnd; ty++ {
		if s := ty.String(); strings.HasPrefix(s, "type(") || s == "" {
			t.Errorf("Type %d has no name", ty)
		}
	}
	if got := TypeDontHave.String(); got != "dont-have" {
		t.Errorf("TypeDontHave = %q", got)
	}
	if got := TypeToken; got != 14 {
		t.Errorf("TypeToken = %d, want 14", got)
	}
	if got := TypeHaves; got != 15 {
		t.Errorf("TypeHaves = %d, want 15", got)
	}
	if got := typeEnd.String(); got != "type(16)" {
		t.Errorf("typeEnd = %q, want type(16): existing type numbers must not move", got)
	}
	if got := Type(99).String(); got != "type(99)" {
		t.Errorf("Type(99) = %q", got)
	}
	if got := ReasonNotHave.String(); got != "not-have" {
		t.Errorf("ReasonNotHave = %q", got)
	}
	if got := Reason(77).String(); got != "reason(77)" {
		t.Errorf("Reason(77) = %q", got)
	}
}
