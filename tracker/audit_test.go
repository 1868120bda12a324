package tracker

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

func TestAuditJoinsAndLeaves(t *testing.T) {
	var mu sync.Mutex
	var got []audit.Event
	clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := New(Config{Interval: 10 * time.Second, Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)), Logger: quiet,
		Audit: audit.SinkFunc(func(e audit.Event) { mu.Lock(); got = append(got, e); mu.Unlock() })})
	announce(t, s, req("c", "p1", "", 1))
	announce(t, s, req("c", "p1", "", 0)) // a re-announce is no join
	stop := req("c", "p1", "", 0)
	stop.Event = discovery.EventStopped
	announce(t, s, stop)
	announce(t, s, stop) // a second stop finds nobody to leave
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Kind != audit.KindJoin || got[1].Kind != audit.KindLeave {
		t.Fatalf("events %+v, want one join then one leave", got)
	}
	if got[0].Peer != "p1" || got[0].Content != content("c").String() || got[0].IP == "" || !got[0].Time.Equal(clk.T) {
		t.Fatalf("join event %+v lacks the peer, content, address or time", got[0])
	}
}

// BenchmarkAnnounceAudit measures a join and a leave (two announces, each
// an audit event) in a swarm of 10,000 peers, with no audit log and with a
// pseudonymising audit.Writer, in the same run.
func BenchmarkAnnounceAudit(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "audit=off"
		if on {
			name = "audit=on"
		}
		b.Run(name, func(b *testing.B) {
			var sink audit.Sink
			if on {
				w, err := audit.NewWriter(audit.WriterConfig{Path: filepath.Join(b.TempDir(), "audit.log"), Queue: 1 << 16})
				if err != nil {
					b.Fatal(err)
				}
				defer func() {
					w.Close()
					b.ReportMetric(float64(w.Dropped()), "dropped")
				}()
				sink = w
			}
			clk := &core.ManualClock{T: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			s := New(Config{Interval: 10 * time.Second, MaxPeers: 50, Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)), Logger: quiet, Audit: sink})
			const n = 10000
			for i := range n {
				body, _ := json.Marshal(req("c", fmt.Sprintf("peer%05d", i), fmt.Sprintf("r%d", i%4), int64(i%2)))
				post(b, s, body)
			}
			join, _ := json.Marshal(req("c", "joiner", "r0", 1))
			r := req("c", "joiner", "r0", 1)
			r.Event = discovery.EventStopped
			leave, _ := json.Marshal(r)
			b.ReportAllocs()
			for b.Loop() {
				if code, body := post(b, s, join); code != http.StatusOK {
					b.Fatalf("HTTP %d: %s", code, body)
				}
				if code, body := post(b, s, leave); code != http.StatusOK {
					b.Fatalf("HTTP %d: %s", code, body)
				}
			}
		})
	}
}
