package policy

import (
	"errors"
	"testing"
)

func TestAvailabilityBucketsStayConsistent(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		const n = 97
		r := seeded(seed)
		a := NewAvailability(n)
		counts := make([]int, n)
		excluded := map[int]bool{}
		for step := range 5000 {
			i := r.IntN(n)
			switch r.IntN(5) {
			case 0, 1:
				if err := a.AddHave(i); err != nil {
					t.Fatal(err)
				}
				counts[i]++
			case 2:
				if err := a.RemoveHave(i); err != nil {
					t.Fatal(err)
				}
				if counts[i] > 0 {
					counts[i]--
				}
			case 3:
				a.exclude(i)
				excluded[i] = true
			case 4:
				a.include(i)
				delete(excluded, i)
			}
			if step%50 == 0 {
				checkAvail(t, a, counts, excluded)
			}
		}
		checkAvail(t, a, counts, excluded)
	}
}

func TestAvailabilityBitfields(t *testing.T) {
	a := NewAvailability(10)
	x, y := bitsOf(10, 1, 2, 3), bitsOf(10, 3, 4)
	a.AddBitfield(x)
	a.AddBitfield(HasFunc(y.Has)) // the slow, non-Bitset path
	want := []int{0, 1, 1, 2, 1, 0, 0, 0, 0, 0}
	checkAvail(t, a, want, nil)
	a.RemoveBitfield(x)
	checkAvail(t, a, []int{0, 0, 0, 1, 1, 0, 0, 0, 0, 0}, nil)
}

func TestAvailabilityRejectsOutOfRange(t *testing.T) {
	a := NewAvailability(4)
	for _, i := range []int{-1, 4, 1 << 40} {
		if err := a.AddHave(i); !errors.Is(err, ErrChunkRange) {
			t.Errorf("AddHave(%d) = %v, want ErrChunkRange", i, err)
		}
		if err := a.RemoveHave(i); !errors.Is(err, ErrChunkRange) {
			t.Errorf("RemoveHave(%d) = %v, want ErrChunkRange", i, err)
		}
	}
}

func TestBitsetNextSet(t *testing.T) {
	b := bitsOf(200, 0, 63, 64, 130, 199)
	var got []int
	for i := b.NextSet(0); i >= 0; i = b.NextSet(i + 1) {
		got = append(got, i)
	}
	want := []int{0, 63, 64, 130, 199}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k := range want {
		if got[k] != want[k] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if b.Count() != 5 || b.Has(200) || b.Has(-1) {
		t.Fatalf("Count=%d Has(200)=%v", b.Count(), b.Has(200))
	}
	all := allBits(70)
	if all.Count() != 70 || all.NextSet(70) != -1 {
		t.Fatalf("SetAll over 70: count %d", all.Count())
	}
}
