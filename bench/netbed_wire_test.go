package bench

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

const mbit = 1e6 / 8

func near(got, want time.Duration, tol float64) bool {
	return math.Abs(got.Seconds()-want.Seconds()) <= tol*want.Seconds()
}

// With no overhead the wire bounds are the payload bounds.
func TestWireBoundsPayloadOnly(t *testing.T) {
	f := int64(128 << 20)
	for _, n := range []int{1, 3, 10, 20} {
		if got, want := WireLowerBound(n, f, 100*mbit, 20*mbit, 100*mbit, PayloadOnly), LowerBound(n, f, 100*mbit, 20*mbit, 100*mbit); !near(got, want, 1e-9) {
			t.Errorf("N=%d: WireLowerBound = %v, LowerBound %v", n, got, want)
		}
		for _, e := range []int64{f, f * 102 / 100, 2 * f} {
			// EgressBound leaves out the origin's own term, E/u_s.
			want := max(EgressBound(n, f, e, 100*mbit, 20*mbit, 100*mbit), time.Duration(float64(e)/(100*mbit)*float64(time.Second)))
			if got := WireEgressBound(n, f, e, 100*mbit, 20*mbit, 100*mbit, PayloadOnly); !near(got, want, 1e-9) {
				t.Errorf("N=%d E=%d: WireEgressBound = %v, EgressBound %v", n, e, got, want)
			}
		}
	}
}

// The wire bounds grow by the arithmetic their comments give.
func TestWireBounds(t *testing.T) {
	f := int64(128 << 20)
	fl := float64(f)
	w := WireOverhead{Peer: 1.05, Origin: 1.04, Ack: 0.02}
	// E = 1.02·F, N = 10: uplinks carry 1.02·1.05·8.98F + 0.02·1.04·1.02F.
	e := f * 102 / 100
	load := 1.02*1.05*(10*fl-float64(e)) + 0.02*1.04*float64(e)
	want := time.Duration(load / (10 * 20 * mbit) * float64(time.Second))
	if got := WireEgressBound(10, f, e, 100*mbit, 20*mbit, 100*mbit, w); !near(got, want, 1e-9) {
		t.Fatalf("WireEgressBound = %v, want %v", got, want)
	}
	if pay := EgressBound(10, f, e, 100*mbit, 20*mbit, 100*mbit); want <= pay {
		t.Fatalf("wire bound %v not above the payload bound %v", want, pay)
	}
	// A large egress is bounded by the origin's own link: h_o·E/u_s.
	e = 4 * f
	if got, want := WireEgressBound(10, f, e, 100*mbit, 20*mbit, 100*mbit, w), time.Duration(1.04*4*fl/(100*mbit)*float64(time.Second)); !near(got, want, 1e-9) {
		t.Fatalf("WireEgressBound at E=4F = %v, want the origin's %v", got, want)
	}
	// T*_wire with the origin busy all along: h' = 1.02·1.05.
	hp := 1.02 * 1.05
	tw := hp * 10 * fl / (10*20*mbit + 100*mbit*(hp/1.04-0.02))
	if got := WireLowerBound(10, f, 100*mbit, 20*mbit, 100*mbit, w); !near(got, time.Duration(tw*float64(time.Second)), 1e-9) {
		t.Fatalf("WireLowerBound = %v, want %.3fs", got, tw)
	}
	// At T*_wire the origin's egress E = T·u_s/h_o gives the same bound.
	tstar := WireLowerBound(10, f, 100*mbit, 20*mbit, 100*mbit, w)
	eBusy := int64(tstar.Seconds() * 100 * mbit / 1.04)
	if got := WireEgressBound(10, f, eBusy, 100*mbit, 20*mbit, 100*mbit, w); !near(got, tstar, 1e-6) {
		t.Fatalf("WireEgressBound at the busy origin's egress = %v, want T*_wire %v", got, tstar)
	}
}

func TestWireOverhead(t *testing.T) {
	// Two receivers serving 100 and 300 bytes at h = 1.05, each
	// downloading 1000 wire bytes and ACKing at a = 0.02.
	w := NetbedWire{
		PeerServed: []int64{100_000, 300_000},
		PeerDown:   []int64{1_000_000, 1_000_000},
		OriginUp:   1_040_000, OriginIn: 20_800,
	}
	w.PeerUp = []int64{105_000 + 20_000, 315_000 + 20_000}
	o, err := w.Overhead(1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(o.Ack-0.02) > 1e-9 || math.Abs(o.Origin-1.04) > 1e-9 || math.Abs(o.Peer-1.05) > 1e-9 {
		t.Fatalf("overhead = %+v, want h 1.05, h_o 1.04, a 0.02", o)
	}
	for name, bad := range map[string]NetbedWire{
		"no origin bytes": {PeerUp: w.PeerUp, PeerDown: w.PeerDown, PeerServed: w.PeerServed},
		"unreported":      {PeerUp: w.PeerUp, PeerDown: w.PeerDown, PeerServed: []int64{100, -1}, OriginUp: 1},
		"lengths":         {PeerUp: w.PeerUp, PeerDown: w.PeerDown[:1], PeerServed: w.PeerServed, OriginUp: 1},
		"nothing served":  {PeerUp: w.PeerUp, PeerDown: w.PeerDown, PeerServed: []int64{0, 0}, OriginUp: 1},
		"unshaped":        {PeerUp: []int64{0, 0}, PeerDown: []int64{0, 0}, PeerServed: w.PeerServed, OriginUp: 1},
	} {
		if _, err := bad.Overhead(1000); !errors.Is(err, ErrNoWire) {
			t.Errorf("%s: err = %v, want ErrNoWire", name, err)
		}
	}
	d := NetbedWire{PeerUp: []int64{10, 20}, PeerDown: []int64{30, 40}, OriginUp: 50, OriginIn: 60}.since(
		NetbedWire{PeerUp: []int64{1, 2}, PeerDown: []int64{3, 4}, OriginUp: 5, OriginIn: 6}, []int64{7, 8})
	if d.PeerUp[1] != 18 || d.PeerDown[0] != 27 || d.OriginUp != 45 || d.OriginIn != 54 || d.PeerServed[1] != 8 {
		t.Fatalf("since = %+v", d)
	}
}

func TestParseQdiscBytes(t *testing.T) {
	out := `[{"kind":"tbf","handle":"8001:","root":true,"refcnt":2,"options":{"rate":2500000,"burst":131072,"lat":100000},"bytes":1234567,"packets":890,"drops":0,"overlimits":3,"requeues":0,"backlog":0,"qlen":0}]`
	if n, err := parseQdiscBytes([]byte(out)); err != nil || n != 1234567 {
		t.Fatalf("parseQdiscBytes = %d, %v", n, err)
	}
	for _, bad := range []string{``, `[]`, `[{"kind":"tbf"}]`, `[{"bytes":1},{"bytes":2}]`, `[{"bytes":-1}]`, `{"bytes":1}`} {
		if _, err := parseQdiscBytes([]byte(bad)); err == nil {
			t.Errorf("parseQdiscBytes(%q) accepted", bad)
		}
	}
}

func TestParseUploaded(t *testing.T) {
	line := "swarm: 100.0 MiB from peers, 28.0 MiB from origin, 120.5 MiB uploaded (bytes: peers=104857600 origin=29360128 uploaded=126353408)"
	if n, ok := parseUploaded(line); !ok || n != 126353408 {
		t.Fatalf("parseUploaded = %d, %v", n, ok)
	}
	for _, bad := range []string{"progress 100.0%", "swarm: 1 MiB uploaded", "swarm: (bytes: uploaded=-3)", "swarm: (bytes: uploaded=x)"} {
		if _, ok := parseUploaded(bad); ok {
			t.Errorf("parseUploaded(%q) accepted", bad)
		}
	}
}

func FuzzParseQdiscBytes(f *testing.F) {
	f.Add([]byte(`[{"kind":"tbf","bytes":1234567,"packets":890}]`))
	f.Add([]byte(`[{"kind":"noqueue","bytes":0}]`))
	f.Add([]byte(`[{"bytes":1},{"bytes":2}]`))
	f.Add([]byte(`[{"bytes":9223372036854775807}]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := parseQdiscBytes(in)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("negative count %d from %q", n, in)
		}
		again, err := parseQdiscBytes([]byte(fmt.Sprintf(`[{"kind":"tbf","bytes":%d}]`, n)))
		if err != nil || again != n {
			t.Fatalf("re-encoded %d decodes to %d, %v", n, again, err)
		}
	})
}

func FuzzParseUploaded(f *testing.F) {
	f.Add("swarm: 1.0 MiB from peers, 0 B from origin, 2.0 MiB uploaded (bytes: peers=1048576 origin=0 uploaded=2097152)")
	f.Add("swarm: uploaded=")
	f.Add("progress 100.0% 1/1 bytes")
	f.Fuzz(func(t *testing.T, line string) {
		n, ok := parseUploaded(line)
		if !ok {
			return
		}
		if n < 0 || !strings.HasPrefix(line, "swarm: ") {
			t.Fatalf("accepted %q as %d", line, n)
		}
		again, ok := parseUploaded(fmt.Sprintf("swarm: x (bytes: peers=0 origin=0 uploaded=%d)", n))
		if !ok || again != n {
			t.Fatalf("re-encoded %d parses to %d, %v", n, again, ok)
		}
	})
}
