package policy

import (
	"slices"
	"testing"
	"time"
)

func TestParseModeRoundTrip(t *testing.T) {
	for _, m := range []Mode{ModeOn, ModeLeechOnly, ModeOff} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Fatalf("ParseMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
	}
	if m, err := ParseMode(" Leech-Only "); err != nil || m != ModeLeechOnly {
		t.Fatalf("ParseMode with case and spaces = %v, %v; want leech-only", m, err)
	}
	for _, s := range []string{"", "of", "leech", "true"} {
		if _, err := ParseMode(s); err == nil {
			t.Fatalf("ParseMode(%q) accepted", s)
		}
	}
	if s := Mode(9).String(); s != "mode(9)" {
		t.Fatalf("Mode(9).String() = %q", s)
	}
	if ModeOn.Stricter(ModeOff) != ModeOff || ModeLeechOnly.Stricter(ModeOn) != ModeLeechOnly {
		t.Fatal("Stricter does not pick the stricter mode")
	}
}

func TestModeSources(t *testing.T) {
	tests := []struct {
		m             Mode
		fetch, upload bool
	}{
		{ModeOn, true, true},
		{ModeLeechOnly, true, false},
		{ModeOff, false, false},
	}
	for _, tt := range tests {
		if tt.m.FetchFromPeers() != tt.fetch || tt.m.UploadToPeers() != tt.upload {
			t.Errorf("%v: fetch %v upload %v, want %v %v", tt.m, tt.m.FetchFromPeers(), tt.m.UploadToPeers(), tt.fetch, tt.upload)
		}
	}
}

// TestOffSendsEverythingToTheOrigin: in ModeOff the picker asks no peer,
// and the origin fallback takes every wanted chunk at once, whoever holds
// it and with the grace not over: deadline chunks first, earliest first,
// then the rest in ascending order. Back on, peers are asked again and
// chunks peers have are left to them.
func TestOffSendsEverythingToTheOrigin(t *testing.T) {
	const n = 8
	p := newTestPicker(n, 1)
	withCounts(p, []int{2, 2, 2, 2, 2, 2, 2, 0})
	all := Source{Key: "a", Has: allBits(n), Rate: fast}
	if got := p.Next(t0, all, 2); len(got) != 2 {
		t.Fatalf("on: Next = %v, want two chunks", got)
	}
	p.SetMode(ModeOff)
	if got := p.Next(t0, all, 4); len(got) != 0 {
		t.Fatalf("off: Next = %v, want nothing", got)
	}
	p.SetDeadline(6, at(time.Minute))
	p.SetDeadline(4, at(30*time.Second))
	p.Received(0, Origin, t0)
	p.Requested(2, Origin, t0)
	if got, want := p.OriginFallback(t0, 0), []int{4, 6, 1, 3, 5, 7}; !slices.Equal(got, want) {
		t.Fatalf("off: OriginFallback = %v, want %v (deadlines, then ascending, within the grace)", got, want)
	}
	if got, want := p.OriginFallback(t0, 3), []int{4, 6, 1}; !slices.Equal(got, want) {
		t.Fatalf("off: OriginFallback(3) = %v, want %v", got, want)
	}
	p.SetMode(ModeOn)
	if got := p.OriginFallback(at(time.Hour), 0); !slices.Equal(got, []int{4, 6, 7}) {
		t.Fatalf("on again: OriginFallback = %v, want the deadlines and chunk 7 no peer has", got)
	}
	if got := p.Next(t0, all, 1); len(got) != 1 {
		t.Fatalf("on again: Next = %v, want a chunk", got)
	}
}

func TestLeechOnlyPicksLikeOn(t *testing.T) {
	const n = 4
	p := newTestPicker(n, 1)
	withCounts(p, []int{1, 1, 1, 0})
	p.SetMode(ModeLeechOnly)
	if got := p.Next(t0, Source{Key: "a", Has: allBits(n), Rate: fast}, 4); len(got) != 3 {
		t.Fatalf("leech-only: Next = %v, want the three chunks the peer has", got)
	}
	if got := p.OriginFallback(at(time.Hour), 0); !slices.Equal(got, []int{3}) {
		t.Fatalf("leech-only: OriginFallback = %v, want [3]", got)
	}
}

// TestOffSkipsDesignation: a chunk designated to another peer is ours at
// once in ModeOff: that peer would not pass it on.
func TestOffSkipsDesignation(t *testing.T) {
	r := newLaneRig(3)
	r.ahead = map[int]int{0: 1, 1: 2, 2: 0}
	if got := r.plan(at(DefaultGrace), 3); !slices.Equal(got, []int{2}) {
		t.Fatalf("on: started %v, want only our own share [2]", got)
	}
	r.p.SetMode(ModeOff)
	if got := r.plan(at(DefaultGrace), 3); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("off: started %v, want [0 1] without takeover waits", got)
	}
}

func TestShares(t *testing.T) {
	tests := []struct {
		name                           string
		offered                        int
		interested, tookFromUs, weHold bool
		want                           bool
	}{
		{"offers chunks", 3, false, true, true, true},
		{"we hold nothing to judge by", 0, false, false, false, true},
		{"newcomer, interested", 0, true, false, true, true},
		{"off: not interested in what we hold", 0, false, false, true, false},
		{"leech-only: took ours, offers none", 0, true, true, true, false},
	}
	for _, tt := range tests {
		if got := Shares(tt.offered, tt.interested, tt.tookFromUs, tt.weHold); got != tt.want {
			t.Errorf("%s: Shares = %v, want %v", tt.name, got, tt.want)
		}
	}
}
