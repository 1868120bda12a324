package tracker

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
)

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
			s := New(Config{AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1, Interval: 10 * time.Second, MaxPeers: 50, Clock: clk, Rand: rand.New(rand.NewPCG(1, 1)), Logger: quiet, Audit: sink})
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
