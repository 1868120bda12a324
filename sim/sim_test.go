package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/swarm/policy"
)

const small = `
name: small
seed: 11
kind: file
duration: 1h
content: {size: 16MiB, chunk: 256KiB}
origin: {capacity: 100Mbit}
classes:
  - {name: fiber, share: 1, up: 50Mbit, down: 200Mbit, latency: 5ms}
  - {name: nat, share: 1, up: 10Mbit, down: 100Mbit, latency: 20ms, nat: true}
  - {name: mobile, share: 0.5, up: 0, down: 30Mbit, latency: 40ms, no_upload: true, nat: true}
joins: {count: 40, over: 5s}
sample: 2s
`

func mustParse(t *testing.T, y string) *Scenario {
	t.Helper()
	sc, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// render runs sc with the A/B and returns every report file's bytes.
func render(t *testing.T, sc *Scenario) string {
	t.Helper()
	rep := &Report{Scenario: sc}
	var err error
	if rep.On, err = Run(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	if rep.Off, err = Run(context.Background(), sc.WithP2P(false)); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range []func(*bytes.Buffer) error{
		func(w *bytes.Buffer) error { return rep.WriteSummary(w) },
		func(w *bytes.Buffer) error { return rep.WriteSeries(w) },
		func(w *bytes.Buffer) error { return rep.WritePeers(w) },
		func(w *bytes.Buffer) error { return rep.WriteSVG(w) },
	} {
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func TestSameSeedSameOutput(t *testing.T) {
	a := render(t, mustParse(t, small))
	b := render(t, mustParse(t, small))
	if a != b {
		t.Fatal("two runs with the same seed differ")
	}
	other := mustParse(t, small)
	other.Seed = 12
	if c := render(t, other); c == a {
		t.Fatal("a different seed gave identical output: the seed is not used")
	}
	// Live exercises the media paths (deadlines, watch windows, churn).
	live := `
name: live
seed: 6
kind: live
duration: 90s
media: {bitrate: 2Mbit, segment: 2s}
origin: {capacity: 1Gbit}
classes:
  - {name: a, share: 1, up: 20Mbit, down: 100Mbit, latency: 10ms}
  - {name: m, share: 0.3, up: 0, down: 30Mbit, latency: 40ms, no_upload: true, nat: true}
joins: {count: 25, over: 20s}
leave: {churn_per_hour: 30}
`
	if render(t, mustParse(t, live)) != render(t, mustParse(t, live)) {
		t.Fatal("two live runs with the same seed differ")
	}
}

func TestEveryPeerCompletesAndOffloads(t *testing.T) {
	r, err := Run(context.Background(), mustParse(t, small))
	if err != nil {
		t.Fatal(err)
	}
	done, incomplete := r.Completion()
	if incomplete != 0 || len(done) != 40 {
		t.Fatalf("%d complete, %d incomplete, want 40 and 0", len(done), incomplete)
	}
	if r.Offload() < 0.5 {
		t.Fatalf("offload %.2f with P2P on, want > 0.5", r.Offload())
	}
	off, err := Run(context.Background(), mustParse(t, small).WithP2P(false))
	if err != nil {
		t.Fatal(err)
	}
	if off.PeerBytes != 0 || off.OriginBytes != 40*16<<20 {
		t.Fatalf("CDN only: peer bytes %d, origin bytes %d, want 0 and 40 copies", off.PeerBytes, off.OriginBytes)
	}
}

// TestPickOrderChangesTheSim: the simulated peers run policy.Picker, so the
// PickerConfig.Order knob — the one swarm.Config.PickOrder sets for real
// peers (swarm's TestPickOrderReachesThePicker) — changes the order chunks
// arrive in here too.
func TestPickOrderChangesTheSim(t *testing.T) {
	inversions := func(order string) int {
		sc := mustParse(t, `
name: order
seed: 5
duration: 1h
content: {size: 8MiB, chunk: 256KiB}
origin: {off: true}
seeds: {count: 1}
classes: [{name: a, share: 1, up: 20Mbit, down: 100Mbit, latency: 5ms}]
joins: {count: 20, over: 2s}
`)
		sc.Swarm.Order = order
		arrivals := map[int32][]int{}
		_, err := run(context.Background(), sc, &hooks{deliver: func(n *node, i int) {
			arrivals[n.id] = append(arrivals[n.id], i)
		}})
		if err != nil {
			t.Fatal(err)
		}
		inv := 0
		for _, a := range arrivals {
			for x := range a {
				for y := x + 1; y < len(a); y++ {
					if a[y] < a[x] {
						inv++
					}
				}
			}
		}
		return inv
	}
	seq, rarest := inversions("sequential"), inversions("rarest")
	t.Logf("arrival-order inversions: sequential %d, rarest-first %d", seq, rarest)
	if seq*4 > rarest {
		t.Fatalf("sequential picker gave %d inversions vs rarest-first %d: want far fewer", seq, rarest)
	}
}

// TestDesignationIsPolicyAhead checks the simulator's incremental origin
// designation counts against policy.Ahead over each peer's neighbours.
func TestDesignationIsPolicyAhead(t *testing.T) {
	checked := 0
	_, err := run(context.Background(), mustParse(t, small), &hooks{sample: func(w *world) {
		for _, n := range w.alive {
			if n.ahead == nil {
				continue
			}
			for i := range n.ahead {
				want := policy.Ahead(n.seed, i, func(yield func(uint64) bool) {
					for _, c := range n.conns {
						if !yield(c.other.seed) {
							return
						}
					}
				})
				if int(n.ahead[i]) != want {
					t.Fatalf("node %d chunk %d: ahead %d, policy.Ahead %d", n.id, i, n.ahead[i], want)
				}
				checked++
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no designation checked")
	}
}

// TestKumarRossIdealised: no latency, unlimited downloads, everyone joins
// at once. The simulator never beats the lower bound and gets close to it.
func TestKumarRossIdealised(t *testing.T) {
	for _, tc := range []struct {
		n            int
		originMbit   float64
		peerUpMbit   float64
		wantRatioMax float64
	}{
		{20, 100, 20, 1.6},
		{50, 50, 10, 1.6},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			sc := mustParse(t, fmt.Sprintf(`
name: kr
seed: 3
duration: 2h
content: {size: 32MiB, chunk: 256KiB}
origin: {capacity: %gMbit, latency: 1ns}
classes: [{name: peer, share: 1, up: %gMbit, latency: 1ns}]
joins: {count: %d}
`, tc.originMbit, tc.peerUpMbit, tc.n))
			r, err := Run(context.Background(), sc)
			if err != nil {
				t.Fatal(err)
			}
			done, incomplete := r.Completion()
			if incomplete > 0 {
				t.Fatalf("%d incomplete", incomplete)
			}
			bound := KumarRoss(tc.n, 32<<20, tc.originMbit*1e6/8, tc.peerUpMbit*1e6/8, 0)
			ratio := done[len(done)-1].Seconds() / bound.Seconds()
			t.Logf("N=%d: last completion %v, T* %v, ratio %.3f", tc.n, done[len(done)-1], bound, ratio)
			if ratio < 0.999 || ratio > tc.wantRatioMax {
				t.Fatalf("ratio to Kumar–Ross bound %.3f, want in [1, %.2f]", ratio, tc.wantRatioMax)
			}
		})
	}
}

func TestCDNOnlyIsOriginBound(t *testing.T) {
	sc := mustParse(t, small).WithP2P(false)
	r, err := Run(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	done, _ := r.Completion()
	// 40 copies of 16 MiB through 100 Mbit/s, joins over 5 s.
	want := time.Duration(40 * 16 << 20 * 8 / 100e6 * float64(time.Second))
	last := done[len(done)-1] + 5*time.Second
	if last < want*95/100 || last > want*115/100 {
		t.Fatalf("last CDN-only completion ~%v, want ~%v (origin-bound)", last, want)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no duration", "classes: [{name: a}]\ncontent: {size: 1MiB}", "duration"},
		{"bad kind", "kind: torrent\nduration: 1m", "kind"},
		{"bad size", "duration: 1m\ncontent: {size: lots}", "bad size"},
		{"no classes", "duration: 1m\ncontent: {size: 1MiB}", "class"},
		{"media without bitrate", "kind: live\nduration: 1m\nclasses: [{name: a}]", "bitrate"},
		{"media lookahead", "kind: vod\nduration: 1m\nmedia: {bitrate: 1Mbit, lookahead: 8s}\nclasses: [{name: a}]", "media.lookahead is gone"},
		{"nobody has it", "duration: 1m\ncontent: {size: 1MiB}\norigin: {off: true}\nclasses: [{name: a}]", "nobody"},
		{"bad event", "duration: 1m\ncontent: {size: 1MiB}\nclasses: [{name: a}]\nevents: [{at: 1s, action: explode}]", "event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want ErrScenario mentioning %q", err, tc.want)
			}
		})
	}
}

func TestLiveViewersPlay(t *testing.T) {
	sc := mustParse(t, `
name: live
seed: 9
kind: live
duration: 3m
media: {bitrate: 2Mbit, segment: 2s}
origin: {capacity: 1Gbit}
classes: [{name: a, share: 1, up: 20Mbit, down: 100Mbit, latency: 10ms}]
joins: {count: 30, over: 20s}
`)
	r, err := Run(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	p50, p95, rebuf, never := r.QoE()
	t.Logf("start-up P50 %v P95 %v, rebuffer %v/h, never started %d, offload %.2f", p50, p95, rebuf, never, r.Offload())
	if never != 0 || p95 <= 0 || p95 > 10*time.Second {
		t.Fatalf("start-up P95 %v, %d never started", p95, never)
	}
	if r.Offload() <= 0.2 {
		t.Fatalf("live offload %.2f, want > 0.2", r.Offload())
	}
	if !slices.ContainsFunc(r.Series, func(s Sample) bool { return s.PeerMbps > 0 }) {
		t.Fatal("no peer traffic in the time series")
	}
}

// TestConnCachesAreExact checks what connections cache about the other end
// (its key, completion, and how many chunks we have that it lacks) against
// the nodes themselves at every sample, file and live.
func TestConnCachesAreExact(t *testing.T) {
	live := `
name: live
seed: 4
kind: live
duration: 2m
media: {bitrate: 2Mbit, segment: 2s, watch: 40s}
origin: {capacity: 1Gbit}
classes: [{name: a, share: 1, up: 20Mbit, down: 100Mbit, latency: 10ms}]
joins: {count: 30, over: 20s}
leave: {churn_per_hour: 60}
sample: 1s
`
	for _, y := range []string{small, live} {
		sc := mustParse(t, y)
		checked := 0
		_, err := run(context.Background(), sc, &hooks{sample: func(w *world) {
			for _, n := range w.alive {
				for _, c := range n.conns {
					if c.otherKey != c.other.key || c.otherDone != c.other.complete() || c.offer != n.have.minusCount(c.other.have) {
						t.Fatalf("%s: conn %d→%d caches key %s done %v offer %d, want %s %v %d", sc.Name, n.id, c.other.id,
							c.otherKey, c.otherDone, c.offer, c.other.key, c.other.complete(), n.have.minusCount(c.other.have))
					}
					if c.unchokedBy == c.back.amChoking {
						t.Fatalf("%s: conn %d→%d unchokedBy %v, other chokes %v", sc.Name, n.id, c.other.id, c.unchokedBy, c.back.amChoking)
					}
					checked++
				}
				servers := 0
				for _, c := range n.conns {
					if c.unchokedBy {
						servers++
					}
				}
				for k, c := range n.servers {
					if c.self != n || c.srvIdx != k || !c.unchokedBy || c.closed {
						t.Fatalf("%s: node %d servers[%d] is inconsistent", sc.Name, n.id, k)
					}
				}
				if servers != len(n.servers) {
					t.Fatalf("%s: node %d has %d unchoking conns, %d servers", sc.Name, n.id, servers, len(n.servers))
				}
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		if checked == 0 {
			t.Fatalf("%s: nothing checked", sc.Name)
		}
	}
}

// TestWireCostSlowsTheLinks guards the wire model (Scenario.Wire): a link
// that carries h wire bytes per payload byte moves payload h times slower,
// the origin's h_o, and payload_only charges nothing.
func TestWireCostSlowsTheLinks(t *testing.T) {
	last := func(y string) float64 {
		t.Helper()
		r, err := Run(context.Background(), mustParse(t, y))
		if err != nil {
			t.Fatal(err)
		}
		done, incomplete := r.Completion()
		if incomplete > 0 || len(done) == 0 {
			t.Fatalf("%d incomplete", incomplete)
		}
		return done[len(done)-1].Seconds()
	}
	for _, tc := range []struct {
		name, base string
		want       float64 // wire time / payload-only time
	}{
		// One peer, CDN only: the origin's link is the bottleneck.
		{"origin", `
name: wire-origin
duration: 1h
content: {size: 8MiB, chunk: 256KiB}
origin: {capacity: 10Mbit, latency: 1ns}
swarm: {p2p: false}
classes: [{name: a, share: 1, up: 20Mbit, down: 100Mbit, latency: 1ns}]
joins: {count: 1}
`, 1.05},
		// One seed, no origin: the seed's upload is the bottleneck; the
		// seed downloads nothing, so it sends no ACKs.
		{"peer", `
name: wire-peer
duration: 1h
content: {size: 8MiB, chunk: 256KiB}
origin: {off: true}
classes:
  - {name: a, share: 1, up: 20Mbit, down: 100Mbit, latency: 1ns}
  - {name: seed, share: 0, up: 10Mbit, down: 100Mbit, latency: 1ns}
seeds: {count: 1, class: seed}
joins: {count: 1}
`, 1.10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pay := last(tc.base + "wire: {payload_only: true}\n")
			wire := last(tc.base + "wire: {peer: 1.10, origin: 1.05}\n")
			if r := wire / pay; math.Abs(r-tc.want) > 0.01 {
				t.Fatalf("with the wire %.3fs, payload only %.3fs: ratio %.3f, want %.2f", wire, pay, r, tc.want)
			}
		})
	}
	if _, err := Parse([]byte("duration: 1m\ncontent: {size: 1MiB}\nclasses: [{name: a}]\nwire: {peer: 0.9}")); !errors.Is(err, ErrScenario) {
		t.Fatalf("wire peer 0.9 accepted: %v", err)
	}
}
