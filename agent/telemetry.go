package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/swarm"
)

// DefaultTelemetryInterval is how often a peer sends the tracker its
// summary (PeerConfig.TelemetryInterval).
const DefaultTelemetryInterval = 30 * time.Second

// telemetryTimeout bounds one post to the trackers; finalTelemetryTimeout
// the last one, as the peer shuts down.
const (
	telemetryTimeout      = 10 * time.Second
	finalTelemetryTimeout = 2 * time.Second
)

// playTotals are the gateway's playback figures since the peer started,
// which the telemetry loop turns into deltas.
type playTotals struct {
	startups [discovery.NumStartupBuckets]int64
	startupS float64
	stalls   int64
	stallS   float64
	watchS   float64 // seconds of media sent to players, once per segment
}

// startup counts one start-up of d.
func (t *playTotals) startup(d time.Duration) {
	s := d.Seconds()
	t.startupS += s
	for i, b := range discovery.StartupBucketsS {
		if s <= b {
			t.startups[i]++
			return
		}
	}
	t.startups[len(discovery.StartupBucketsS)]++
}

// snapshot returns the totals so far.
func (pb *playbacks) snapshot() playTotals {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	return pb.totals
}

// byteCounts are a session's byte counters.
type byteCounts struct{ fromPeers, fromOrigin, uploaded int64 }

// telemetry builds a peer's reports: each carries what happened since the
// previous one that reached a tracker.
type telemetry struct {
	p        *Peer
	trackers *discovery.Trackers // its own: a tracker resting telemetry still takes announces
	interval time.Duration
	seq      int64

	seen    map[*swarm.Session]byteCounts // counters as of the last report, of sessions seen then
	play    playTotals                    // as of the last report
	pending discovery.TelemetryReport     // deltas of reports that did not get through
	// refusing is set while the tracker refuses every report, so the log
	// says so once, not every interval.
	refusing bool
}

// checkTelemetry checks the telemetry settings, fills the default
// interval, and reports whether the peer sends telemetry: an interval not
// negative, and a tracker.
func (p *Peer) checkTelemetry() (bool, error) {
	cfg := &p.cfg
	for _, l := range []struct{ flag, v string }{{"device class", cfg.DeviceClass}, {"network label", cfg.NetworkLabel}} {
		if err := discovery.CheckTelemetryLabel(l.v); err != nil {
			return false, fmt.Errorf("%w: %s %q: %v", ErrBadInput, l.flag, l.v, err)
		}
	}
	if cfg.TelemetryInterval == 0 {
		cfg.TelemetryInterval = DefaultTelemetryInterval
	}
	if cfg.TelemetryInterval > 0 && (cfg.TelemetryInterval < time.Second || cfg.TelemetryInterval > discovery.MaxTelemetryInterval) {
		return false, fmt.Errorf("%w: telemetry interval %v: want 1s to %v, or negative for none", ErrBadInput, cfg.TelemetryInterval, discovery.MaxTelemetryInterval)
	}
	return cfg.TelemetryInterval > 0 && cfg.Tracker != "", nil
}

// runTelemetry posts a report every interval until ctx ends, then one last
// one (bounded by a short timeout) if a half interval has passed since the
// previous: a one-shot fetch's bytes reach the tracker too.
func (p *Peer) runTelemetry(ctx context.Context) {
	tr, err := discovery.ParseTrackers(p.cfg.Tracker, nil)
	if err != nil {
		p.log.Warn("telemetry off", "err", err)
		return
	}
	t := &telemetry{p: p, trackers: tr, interval: p.cfg.TelemetryInterval, seq: time.Now().UnixMilli(),
		seen: map[*swarm.Session]byteCounts{}}
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	var last time.Time // of the last report sent; zero before the first
	for {
		select {
		case <-tick.C:
			t.send(ctx, false)
			last = time.Now()
		case <-ctx.Done():
			if last.IsZero() || time.Since(last) >= t.interval/2 {
				fctx, cancel := context.WithTimeout(context.Background(), finalTelemetryTimeout)
				t.send(fctx, true)
				cancel()
			}
			return
		}
	}
}

// report builds the next report: the deltas since the last one sent, plus
// those of reports that did not get through.
func (t *telemetry) report() discovery.TelemetryReport {
	p := t.p
	r := t.pending
	r.Peer = string(p.host.ID())
	r.IntervalS = t.interval.Seconds()
	r.Region, r.Network, r.Device = p.cfg.Region, p.cfg.NetworkLabel, p.cfg.DeviceClass
	r.Cohort = ""
	f := p.cfg.TelemetryCohort
	if f == nil {
		f = p.Cohort // the operator policy's experiments
	}
	if c := f(); discovery.CheckTelemetryLabel(c) == nil {
		r.Cohort = c
	} else {
		p.log.Debug("telemetry cohort not sent", "cohort", c)
	}
	if p.cfg.Token != nil {
		r.Token = p.cfg.Token.Token()
	}
	cur := p.Sessions()
	now := make(map[*swarm.Session]byteCounts, len(cur))
	r.Swarms, r.Chunks, r.RareChunks = int64(len(cur)), 0, 0
	for _, s := range cur {
		x := s.Stats()
		now[s] = byteCounts{x.BytesFromPeers, x.BytesFromOrigin, x.BytesUploaded}
		held := min(max(x.Wanted, x.Have), x.Chunks)
		r.Chunks += int64(held)
		r.RareChunks += int64(min(x.RareChunks, held))
	}
	// Sessions seen last time and gone since: their last counts still
	// count (a Session's Stats outlive its Run).
	for s := range t.seen {
		if _, ok := now[s]; !ok {
			x := s.Stats()
			now[s] = byteCounts{x.BytesFromPeers, x.BytesFromOrigin, x.BytesUploaded}
		}
	}
	for s, c := range now {
		was := t.seen[s]
		r.FromPeers += max(c.fromPeers-was.fromPeers, 0)
		r.FromOrigin += max(c.fromOrigin-was.fromOrigin, 0)
		r.Uploaded += max(c.uploaded-was.uploaded, 0)
	}
	for s := range now {
		if !containsSession(cur, s) {
			delete(now, s) // counted for the last time
		}
	}
	t.seen = now

	play := p.plays.snapshot()
	if len(r.Startups) != discovery.NumStartupBuckets {
		r.Startups = make([]int64, discovery.NumStartupBuckets)
	}
	some := false
	for i := range play.startups {
		r.Startups[i] += play.startups[i] - t.play.startups[i]
		some = some || r.Startups[i] > 0
	}
	if !some {
		r.Startups = nil
	}
	r.StartupS += play.startupS - t.play.startupS
	r.Stalls += play.stalls - t.play.stalls
	r.StallS += play.stallS - t.play.stallS
	r.WatchS += play.watchS - t.play.watchS
	t.play = play
	return r
}

func containsSession(ss []*swarm.Session, s *swarm.Session) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// send posts the next report to the first tracker that answers (final:
// the last one, skipped when it has no figures). A report that does not
// get through (a tracker down, resting or overloaded) leaves its deltas
// for the next one, which adds to them: nothing queues but a few sums. One
// the tracker refuses as malformed or unauthorised is dropped.
func (t *telemetry) send(ctx context.Context, final bool) {
	p := t.p
	r := t.report()
	if final && r.FromPeers == 0 && r.FromOrigin == 0 && r.Uploaded == 0 && r.Startups == nil && r.WatchS == 0 && r.StallS == 0 {
		return // nothing since the last: spare the shutdown a round trip
	}
	t.seq++
	r.Seq = t.seq
	if s := signerOf(p.host); s != nil {
		if err := r.Sign(s, time.Now()); err != nil {
			p.log.Warn("telemetry not sent", "err", err)
			return
		}
	} else {
		r.TS = time.Now().UnixMilli()
	}
	if err := r.Validate(); err != nil {
		p.log.Warn("telemetry not sent", "err", err)
		t.pending = discovery.TelemetryReport{}
		return
	}
	cctx, cancel := context.WithTimeout(ctx, min(t.interval, telemetryTimeout))
	err := t.trackers.Telemetry(cctx, r)
	cancel()
	switch {
	case err == nil:
		t.pending = discovery.TelemetryReport{}
		t.refusing = false
	case errors.Is(err, discovery.ErrTelemetryRefused):
		// Once per run of refusals: a tracker without telemetry (404) or
		// one that refuses this peer's token refuses every report.
		if !t.refusing {
			p.log.Warn("telemetry refused; figures dropped until the tracker accepts them", "err", err)
		} else {
			p.log.Debug("telemetry refused", "err", err)
		}
		t.refusing = true
		t.pending = discovery.TelemetryReport{}
		return
	default:
		p.log.Debug("telemetry not delivered; its figures go with the next", "err", err)
		t.pending = discovery.TelemetryReport{
			FromPeers: r.FromPeers, FromOrigin: r.FromOrigin, Uploaded: r.Uploaded, Startups: r.Startups,
			StartupS: r.StartupS, Stalls: r.Stalls, StallS: r.StallS, WatchS: r.WatchS,
		}
	}
}
