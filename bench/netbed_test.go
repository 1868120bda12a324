package bench

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestEgressBound(t *testing.T) {
	const mbit = 1e6 / 8
	// N=10, F=128 MiB, u_s=100, u_i=20, d_i=100 Mbit/s: T* is N·F/(u_s+Σu_i).
	f := int64(128 << 20)
	tstar := LowerBound(10, f, 100*mbit, 20*mbit, 100*mbit)
	if got := EgressBound(10, f, 0, 100*mbit, 20*mbit, 100*mbit); got <= tstar {
		t.Fatalf("with no origin egress the bound %v must exceed T* %v (every byte over the uplinks)", got, tstar)
	}
	// E = 1.03·F: (10−1.03)·F / (10·20 Mbit/s) ≈ 48.2 s.
	got := EgressBound(10, f, f*103/100, 100*mbit, 20*mbit, 100*mbit)
	if got < 48*time.Second || got > 48500*time.Millisecond {
		t.Fatalf("EgressBound at E=1.03F = %v, want ≈ 48.2 s", got)
	}
	// A large egress cannot beat T*.
	if got := EgressBound(10, f, 10*f, 100*mbit, 20*mbit, 100*mbit); got != tstar {
		t.Fatalf("EgressBound at E=10F = %v, want T* %v", got, tstar)
	}
	if m := median([]time.Duration{3, 1, 2}); m != 2 {
		t.Fatalf("median = %v", m)
	}
	if m := median([]int64{4, 1, 3, 2}); m != 2 {
		t.Fatalf("median = %v", m)
	}
}

// The BitTorrent tracker of the netbed answers compact peer lists without
// the asker, forgets stopped peers, and refuses malformed announces.
func TestBTTracker(t *testing.T) {
	tr := newBTTracker()
	ih := strings.Repeat("a", 20)
	announce := func(remote, port, event string) string {
		req := httptest.NewRequest(http.MethodGet, "/announce?info_hash="+ih+"&port="+port+"&event="+event, nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		tr.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	if got := announce("198.18.0.1:5000", "6881", ""); got != "d8:intervali30e5:peers0:e" {
		t.Fatalf("first announce = %q", got)
	}
	got := announce("198.18.1.1:5001", "6882", "")
	want := "d8:intervali30e5:peers6:" + string([]byte{198, 18, 0, 1, 0x1a, 0xe1}) + "e"
	if got != want {
		t.Fatalf("second announce = %q, want %q", got, want)
	}
	announce("198.18.0.1:5000", "6881", "stopped")
	if got := announce("198.18.1.1:5001", "6882", ""); got != "d8:intervali30e5:peers0:e" {
		t.Fatalf("after the first peer stopped = %q", got)
	}
	if got := announce("198.18.1.1:5001", "0", ""); !strings.Contains(got, "failure reason") {
		t.Fatalf("port 0 accepted: %q", got)
	}
	if tr.count() != 1 {
		t.Fatalf("count = %d, want 1", tr.count())
	}
	var b bytes.Buffer
	(&NetbedResult{Config: NetbedConfig{Receivers: 2, Size: 1 << 20}, Runs: []NetbedRun{
		{Client: ClientShoal, Done: []time.Duration{time.Second, 2 * time.Second}, Completed: 2, Receivers: 2, OriginEgress: 1 << 20},
	}}).WriteReport(&b)
	if !strings.Contains(b.String(), "T_last 2.0s") {
		t.Fatalf("report lacks the median T_last:\n%s", b.String())
	}
}

// TestNetbedReportLeavesUnmeasuredRunsOutOfWireMedians guards the wire
// medians: a run whose counters gave no overhead says so on its own line
// and does not drag the medians towards zero.
func TestNetbedReportLeavesUnmeasuredRunsOutOfWireMedians(t *testing.T) {
	const f = 1 << 20
	measured := &NetbedWire{PeerUp: []int64{1060 * f / 1000, 1060 * f / 1000}, PeerDown: []int64{f, f}, PeerServed: []int64{f, f}, OriginUp: 1048 * f / 1000, OriginIn: 0}
	run := func(w *NetbedWire) NetbedRun {
		return NetbedRun{Client: ClientShoal, Done: []time.Duration{time.Second, 2 * time.Second}, Completed: 2, Receivers: 2,
			OriginEgress: f, OriginServed: f, Wire: w}
	}
	var b bytes.Buffer
	(&NetbedResult{Config: NetbedConfig{Receivers: 2, Size: f, OriginUp: 1e6, PeerUp: 1e6, PeerDown: 1e7}, Runs: []NetbedRun{
		run(measured), run(&NetbedWire{}), run(measured),
	}}).WriteReport(&b)
	out := b.String()
	if !strings.Contains(out, "(2 of 3 runs measured): h=1.0600 h_o=1.0480 a=0.0000") {
		t.Fatalf("wire medians not over the 2 measured runs:\n%s", out)
	}
	if !strings.Contains(out, "wire: netbed: no wire counters") {
		t.Fatalf("the unmeasured run does not say so:\n%s", out)
	}
}
