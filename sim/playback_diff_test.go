package sim

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/swarm/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/playback-vod.trace from the simulator's run")

// playbackTrace is the on-demand playback both the simulator's viewer and
// the peer's gateway (agent.TestGatewayPlaybackFollowsTheSimTrace) are
// checked against: what the player asked for and was sent, when, and what
// the gateway's rules decided for each request.
const playbackTrace = "testdata/playback-vod.trace"

// traceScenario: a short video in 2 s segments, a player with a 6 s buffer
// goal (so it pauses its requests and its deadlines move with its buffer),
// and a second viewer joining later, so the first one's look-ahead and
// requests meet a swarm. Payload-only links: the trace holds the rules'
// decisions, which the wire's cost would only shift in time.
const traceScenario = `
name: playback-trace
seed: 5
kind: vod
duration: 2m
media: {bitrate: 4Mbit, segment: 2s, buffer: 6s}
content: {size: 10MB}
origin: {capacity: 40Mbit, latency: 10ms}
swarm: {tick: 100ms}
wire: {payload_only: true}
classes:
  - {name: a, share: 1, up: 20Mbit, down: 50Mbit, latency: 5ms}
joins: {count: 2, over: 10s}
`

// TestSimViewerRunsThePlaybackRules runs the simulator's on-demand viewer
// and records, for its first viewer, every request the player made, what
// the gateway's rules made of it (start-up from the origin, due time, late
// time, look-ahead with deadlines) and every segment sent. The trace must
// be testdata/playback-vod.trace, byte for byte; the gateway is held to the
// same trace (agent's TestGatewayPlaybackFollowsTheSimTrace replays its
// requests and sends through the gateway's playback code and compares the
// decisions). A constant changed on either side, or a rule applied
// differently, fails one of the two; a change of the rules themselves
// (swarm/policy/playback.go) fails both until the trace is rewritten with
// `go test ./sim -run TestSimViewerRunsThePlaybackRules -update`.
func TestSimViewerRunsThePlaybackRules(t *testing.T) {
	sc := mustParse(t, traceScenario)
	var b strings.Builder
	var t0 time.Time // the viewer's first request
	at := func(t time.Time) string { return fmt.Sprintf("%.3f", t.Sub(t0).Seconds()) }
	h := &hooks{
		request: func(w *world, n *node, seg int, st policy.Step) {
			if n.id != 0 {
				return
			}
			if t0.IsZero() {
				t0 = w.t()
			}
			fmt.Fprintf(&b, "%s request %d: %s\n", at(w.t()), seg, formatStep(st, t0))
		},
		sent: func(w *world, n *node, seg int) {
			if n.id == 0 {
				fmt.Fprintf(&b, "%s sent %d\n", at(w.t()), seg)
			}
		},
		lookahead: func(w *world, n *node, seg int, ahead []policy.SegmentDue) {
			if n.id == 0 {
				fmt.Fprintf(&b, "%s ahead %d: %s\n", at(w.t()), seg, formatAhead(ahead, t0))
			}
		},
	}
	if _, err := run(context.Background(), sc, h); err != nil {
		t.Fatal(err)
	}
	// The header says what the gateway needs to know of the rendition.
	w := int(sc.Content.Size / sc.Content.Chunk)
	if sc.Content.Size%sc.Content.Chunk != 0 {
		w++
	}
	got := fmt.Sprintf("rendition %d segments of %.3f s\n", w, sc.Media.Segment.D().Seconds()) + b.String()
	for _, want := range []string{"direct more", "direct due", "deadline due", "ahead"} {
		if !strings.Contains(got, want) {
			t.Fatalf("the trace has no %q: the scenario no longer exercises every rule\n%s", want, got)
		}
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(playbackTrace), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(playbackTrace, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(playbackTrace)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("the simulator's viewer decided otherwise than %s (rewrite it with -update if the rules changed on purpose):\n%s", playbackTrace, diffLines(string(want), got))
	}
}

// formatStep writes a request's decision the way the trace has it; times
// are seconds since t0. agent's test writes the same format.
func formatStep(st policy.Step, t0 time.Time) string {
	kind := "deadline"
	if st.Direct {
		kind = "direct"
		if st.More {
			kind += " more"
		}
	}
	s := fmt.Sprintf("%s due %.3f", kind, st.Due.Sub(t0).Seconds())
	if !st.Direct {
		s += fmt.Sprintf(" late %.3f", st.LateAt().Sub(t0).Seconds())
	}
	return s
}

// formatAhead writes a look-ahead as "segment@due ...".
func formatAhead(ahead []policy.SegmentDue, t0 time.Time) string {
	if len(ahead) == 0 {
		return "none"
	}
	parts := make([]string, len(ahead))
	for k, a := range ahead {
		parts[k] = fmt.Sprintf("%d@%.3f", a.Seg, a.Due.Sub(t0).Seconds())
	}
	return strings.Join(parts, " ")
}

// diffLines shows the first lines where want and got differ.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for k := 0; k < max(len(w), len(g)) && shown < 8; k++ {
		var a, c string
		if k < len(w) {
			a = w[k]
		}
		if k < len(g) {
			c = g[k]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", k+1, a, c)
			shown++
		}
	}
	return b.String()
}

// TestSimLiveViewerRunsTheLiveRules: every live request goes through
// policy.LiveRequest with what the gateway would pass (segments served so
// far, the edge due time of a segment published after the viewer joined),
// and its decision is carried out: the first policy.StartupSegments
// segments are asked of the origin at once, and a later segment missing at
// its due time gets its deadline then, not before.
func TestSimLiveViewerRunsTheLiveRules(t *testing.T) {
	sc := mustParse(t, `
name: live-rules
seed: 9
kind: live
duration: 1m
media: {bitrate: 2Mbit, segment: 2s}
origin: {capacity: 1Gbit}
swarm: {tick: 100ms}
classes: [{name: a, share: 1, up: 20Mbit, down: 100Mbit, latency: 10ms}]
joins: {count: 8, start: 10s, over: 5s}
`)
	type req struct {
		at  time.Duration
		seg int
		st  policy.LiveStep
	}
	reqs := map[int32][]req{}
	asked := map[[2]int]time.Duration{} // (node, chunk) → first origin request
	h := &hooks{
		liveRequest: func(w *world, n *node, seg int, st policy.LiveStep) {
			reqs[n.id] = append(reqs[n.id], req{w.now, seg, st})
		},
		originStart: func(w *world, n *node, chunk int) {
			if _, ok := asked[[2]int{int(n.id), chunk}]; !ok {
				asked[[2]int{int(n.id), chunk}] = w.now
			}
		},
	}
	if _, err := run(context.Background(), sc, h); err != nil {
		t.Fatal(err)
	}
	seglen := sc.Media.Segment.D()
	edge := 0
	for id, rs := range reqs {
		if len(rs) < policy.StartupSegments+3 {
			t.Fatalf("viewer %d made %d requests", id, len(rs))
		}
		for k, r := range rs {
			if got, want := r.st.Direct, k < policy.StartupSegments; got != want {
				t.Errorf("viewer %d request %d (segment %d): direct %v, want %v", id, k, r.seg, got, want)
			}
			if r.st.Direct {
				if at, ok := asked[[2]int{int(id), r.seg}]; !ok || at != r.at {
					t.Errorf("viewer %d: start-up segment %d asked of the origin at %v, want at the request (%v)", id, r.seg, at, r.at)
				}
				continue
			}
			// A segment published after the viewer's first request is
			// left to the swarm until its edge due time at least.
			pub := time.Duration(r.seg+1) * seglen
			if pub > rs[0].at {
				edge++
				if due := r.st.Due.Sub(epoch); due < pub+time.Duration(policy.LiveEdgeSlack*float64(seglen)) {
					t.Errorf("viewer %d segment %d (published %v): due %v, before its edge due", id, r.seg, pub, due)
				}
			}
		}
	}
	if edge == 0 {
		t.Fatal("no request for a segment published after its viewer joined: the scenario does not exercise the edge rule")
	}
}
