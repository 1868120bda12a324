package core

import (
	"errors"
	"testing"
)

func TestParseRoundTrip(t *testing.T) {
	h := SumSHA256([]byte("shoal"))
	if got, err := ParseHash(h.String()); err != nil || got != h {
		t.Fatalf("ParseHash: %v", err)
	}
	id := ContentID(h)
	if got, err := ParseContentID(id.String()); err != nil || got != id {
		t.Fatalf("ParseContentID: %v", err)
	}
	for _, bad := range []string{"", "zz", h.String()[:63], "ABCDEF" + h.String()[6:]} {
		if _, err := ParseHash(bad); !errors.Is(err, ErrBadHash) {
			t.Errorf("ParseHash(%q) = %v", bad, err)
		}
	}
	if _, err := ParseContentID(id.String() + "A"); !errors.Is(err, ErrBadHash) {
		t.Errorf("long content ID accepted")
	}
}

func TestSizesAndRates(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"256KiB", 256 << 10}, {"1GiB", 1 << 30}, {"10MB", 10e6}, {"16k", 16 << 10}, {"0", 0}} {
		if got, err := ParseSize(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	if r, err := ParseRate("20Mbit"); err != nil || r != 2.5e6 {
		t.Errorf("ParseRate(20Mbit) = %v, %v", r, err)
	}
	if _, err := ParseSize("lots"); err == nil {
		t.Error("ParseSize accepted garbage")
	}
	if err := CheckChunkSize(1000); !errors.Is(err, ErrBadChunkSize) {
		t.Errorf("CheckChunkSize(1000) = %v", err)
	}
	if ChunkCount(0, 16) != 0 || ChunkCount(17, 16) != 2 || ChunkLen(17, 16, 1) != 1 {
		t.Error("chunk arithmetic")
	}
}

// TestParseContentIDRejectsLineBreaks guards the strict decoding: Go's base64
// decoders skip '\r' and '\n', so without a check of its own an ID with a
// line break inside parsed as the ID without it.
func TestParseContentIDRejectsLineBreaks(t *testing.T) {
	id := ContentID(SumSHA256([]byte("line breaks"))).String()
	for _, s := range []string{
		id[:20] + "\n" + id[20:],
		id[:20] + "\r\n" + id[20:],
		"\r" + id,
		id + "\n",
		id[:42] + "\n",
		id[:10] + " " + id[11:],
		id[:42] + "=",
	} {
		if got, err := ParseContentID(s); !errors.Is(err, ErrBadHash) {
			t.Errorf("ParseContentID(%q) = %v, %v; want ErrBadHash", s, got, err)
		}
	}
	if got, err := ParseContentID(id); err != nil || got.String() != id {
		t.Errorf("ParseContentID(%q) = %v, %v", id, got, err)
	}
}

func FuzzParseContentID(f *testing.F) {
	id := ContentID(SumSHA256(nil)).String()
	f.Add(id)
	f.Add("")
	f.Add(id[:20] + "\r\n" + id[20:]) // Go's base64 skips CR/LF: must not parse
	f.Add(id + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseContentID(s)
		if err != nil {
			return
		}
		if id.String() != s {
			t.Fatalf("parse → print changed %q to %q", s, id.String())
		}
		var raw [HashSize]byte
		if !DecodeBase64URL(raw[:], s) || ContentID(raw) != id {
			t.Fatalf("DecodeBase64URL disagrees with ParseContentID on %q", s)
		}
	})
}

func FuzzParseHash(f *testing.F) {
	f.Add(SumSHA256(nil).String())
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHash(s)
		if err != nil {
			return
		}
		if h.String() != s {
			t.Fatalf("parse → print changed %q to %q", s, h.String())
		}
	})
}

func TestShardSizes(t *testing.T) {
	for _, n := range []int{1, 7, ShardedMin - 1, ShardedMin, ShardedMin + 5, 100_000} {
		sizes := ShardSizes(n)
		want, sum := 1, 0
		if n >= ShardedMin {
			want = Shards
		}
		for _, s := range sizes {
			sum += s
			if s < n/want || s > n/want+1 {
				t.Errorf("ShardSizes(%d) has a part of %d, want %d or %d", n, s, n/want, n/want+1)
			}
		}
		if len(sizes) != want || sum != n {
			t.Errorf("ShardSizes(%d) = %d parts summing to %d, want %d parts summing to %d", n, len(sizes), sum, want, n)
		}
	}
}
