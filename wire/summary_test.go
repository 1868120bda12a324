package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleSummary() *Summary {
	s := &Summary{Seq: 1700000000123, Chunks: 100, Slots: 7, Flags: SummarySeeder,
		Addrs:  []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"},
		Ranges: []Run{{0, 3}, {4, 5}, {50, 100}}}
	s.Content[0], s.Content[31] = 7, 9
	return s
}

func TestSummaryRoundTrip(t *testing.T) {
	s := sampleSummary()
	b, err := MarshalSummary(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalSummary(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip: got %+v, want %+v", got, s)
	}
	f := got.Bitfield()
	for i, want := range map[int]bool{0: true, 2: true, 3: false, 4: true, 5: false, 49: false, 50: true, 99: true} {
		if f.Has(i) != want {
			t.Errorf("Bitfield().Has(%d) = %v, want %v", i, f.Has(i), want)
		}
	}
	if runs := RunsOf(f, MaxSummaryRanges); !reflect.DeepEqual(runs, s.Ranges) {
		t.Errorf("RunsOf = %v, want %v", runs, s.Ranges)
	}
	if runs := RunsOf(f, 2); !reflect.DeepEqual(runs, s.Ranges[:2]) {
		t.Errorf("RunsOf capped at 2 = %v, want %v", runs, s.Ranges[:2])
	}
}

// TestSummaryWorstCaseFitsBound: the largest summary the limits allow
// encodes within MaxSummary, so the topic's size check never refuses an
// honest sender.
func TestSummaryWorstCaseFitsBound(t *testing.T) {
	s := &Summary{Chunks: MaxBitfield, Slots: 255}
	for range MaxSummaryAddrs {
		s.Addrs = append(s.Addrs, strings.Repeat("a", MaxSummaryAddr))
	}
	step := MaxBitfield / MaxSummaryRanges
	for k := range MaxSummaryRanges {
		s.Ranges = append(s.Ranges, Run{k*step + 1, k*step + step})
	}
	b, err := MarshalSummary(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxSummary {
		t.Fatalf("worst case is %d bytes, over MaxSummary %d", len(b), MaxSummary)
	}
	if _, err := UnmarshalSummary(b); err != nil {
		t.Fatal(err)
	}
}

func TestSummaryRejectsMalformed(t *testing.T) {
	good, err := MarshalSummary(sampleSummary())
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), ErrMalformed},
		{"version", mod(func(b []byte) []byte { b[4] = 2; return b }), ErrVersion},
		{"trailing", append(bytes.Clone(good), 0), ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"too many addrs", mod(func(b []byte) []byte { b[51] = MaxSummaryAddrs + 1; return b }), ErrMalformed},
		{"range past end", mod(func(b []byte) []byte { b[48] = 60; return b }), ErrMalformed}, // 60 chunks, a range to 100
		{"too big", make([]byte, MaxSummary+1), ErrMalformed},
	} {
		if _, err := UnmarshalSummary(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	bad := sampleSummary()
	bad.Ranges = []Run{{0, 3}, {3, 5}} // adjacent: two encodings of one set
	if _, err := MarshalSummary(bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("adjacent ranges: err = %v, want ErrMalformed", err)
	}
}

// FuzzUnmarshalSummary: whatever decodes re-encodes to the same bytes and
// stays inside the limits; everything else fails with a wire error.
func FuzzUnmarshalSummary(f *testing.F) {
	good, _ := MarshalSummary(sampleSummary())
	f.Add(good)
	f.Add(good[:60])
	empty, _ := MarshalSummary(&Summary{})
	f.Add(empty)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalSummary(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v is not ErrMalformed or ErrVersion", err)
			}
			return
		}
		again, err := MarshalSummary(s)
		if err != nil {
			t.Fatalf("decoded summary does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", b, again)
		}
		if s.Chunks <= 1<<16 && s.Bitfield().Len() != s.Chunks {
			t.Fatalf("bitfield of %d bits for %d chunks", s.Bitfield().Len(), s.Chunks)
		}
	})
}
