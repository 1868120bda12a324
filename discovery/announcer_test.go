package discovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTracker hands each announce to the test over reqs (if set) and answers
// with reply. It records every request.
type fakeTracker struct {
	reqs  chan AnnounceRequest
	reply func(n int, req AnnounceRequest) (AnnounceResponse, error)

	mu   sync.Mutex // guards seen
	seen []AnnounceRequest
}

func (f *fakeTracker) Announce(ctx context.Context, req AnnounceRequest) (AnnounceResponse, error) {
	f.mu.Lock()
	f.seen = append(f.seen, req)
	n := len(f.seen)
	f.mu.Unlock()
	if f.reqs != nil {
		select {
		case f.reqs <- req:
		case <-ctx.Done():
			return AnnounceResponse{}, ctx.Err()
		}
	}
	return f.reply(n, req)
}

func (f *fakeTracker) requests() []AnnounceRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]AnnounceRequest(nil), f.seen...)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fastConfig keeps every wait in the millisecond range so tests run quickly.
func fastConfig(f AnnounceClient) AnnouncerConfig {
	return AnnouncerConfig{
		Tracker: f, Content: testContent("a"), Peer: "self", Addrs: []string{"/ip4/127.0.0.1/tcp/1"},
		MinInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond,
		RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond,
		Logger: quiet, Rand: rand.New(rand.NewPCG(1, 2)),
	}
}

func startAnnouncer(t *testing.T, cfg AnnouncerConfig) (*Announcer, context.CancelFunc, <-chan error) {
	t.Helper()
	a, err := NewAnnouncer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(cancel)
	return a, cancel, done
}

func TestAnnouncerEventSequence(t *testing.T) {
	f := &fakeTracker{reqs: make(chan AnnounceRequest), reply: func(int, AnnounceRequest) (AnnounceResponse, error) {
		return AnnounceResponse{IntervalS: 0.001}, nil
	}}
	var left atomic.Int64
	left.Store(100)
	cfg := fastConfig(f)
	cfg.Stats = func() Stats { return Stats{Uploaded: 7, Downloaded: 100 - left.Load(), Left: left.Load()} }
	_, cancel, done := startAnnouncer(t, cfg)

	if r := <-f.reqs; r.Event != EventStarted || r.Left != 100 || r.Uploaded != 7 {
		t.Fatalf("first announce %+v, want started with left 100", r)
	}
	left.Store(0)
	sawCompleted := false
	for i := 0; i < 5 && !sawCompleted; i++ {
		r := <-f.reqs
		switch r.Event {
		case EventCompleted:
			sawCompleted = true
			if r.Left != 0 || r.Downloaded != 100 {
				t.Errorf("completed announce %+v", r)
			}
		case EventNone:
		default:
			t.Fatalf("unexpected event %q", r.Event)
		}
	}
	if !sawCompleted {
		t.Fatal("no completed announce after left reached 0")
	}
	if r := <-f.reqs; r.Event != EventNone {
		t.Fatalf("announce after completed has event %q, want none", r.Event)
	}
	cancel()
	for r := range f.reqs {
		if r.Event == EventStopped {
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestAnnouncerRetriesFailuresAndKeepsStarted(t *testing.T) {
	f := &fakeTracker{reqs: make(chan AnnounceRequest), reply: func(n int, _ AnnounceRequest) (AnnounceResponse, error) {
		if n <= 3 {
			return AnnounceResponse{}, errors.New("connection refused")
		}
		return AnnounceResponse{IntervalS: 0.001}, nil
	}}
	_, cancel, done := startAnnouncer(t, fastConfig(f))
	for i := 1; i <= 4; i++ {
		if r := <-f.reqs; r.Event != EventStarted {
			t.Fatalf("attempt %d has event %q; started must be repeated until accepted", i, r.Event)
		}
	}
	if r := <-f.reqs; r.Event != EventNone {
		t.Fatalf("announce after success has event %q", r.Event)
	}
	cancel()
	for r := range f.reqs {
		if r.Event == EventStopped {
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestAnnouncerNoStoppedWhenNeverRegistered(t *testing.T) {
	f := &fakeTracker{reqs: make(chan AnnounceRequest), reply: func(int, AnnounceRequest) (AnnounceResponse, error) {
		return AnnounceResponse{}, errors.New("down")
	}}
	_, cancel, done := startAnnouncer(t, fastConfig(f))
	<-f.reqs
	<-f.reqs
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	for _, r := range f.requests() {
		if r.Event == EventStopped {
			t.Fatal("sent stopped although the tracker never accepted an announce")
		}
	}
}

func TestAnnouncerReportsOnlyNewPeers(t *testing.T) {
	a := PeerInfo{Peer: "A", Addrs: []string{"/ip4/127.0.0.1/tcp/1"}}
	b := PeerInfo{Peer: "B", Addrs: []string{"/ip4/127.0.0.1/tcp/2"}}
	b2 := PeerInfo{Peer: "B", Addrs: []string{"/ip4/127.0.0.1/tcp/3"}}
	self := PeerInfo{Peer: "self", Addrs: []string{"/ip4/127.0.0.1/tcp/1"}}
	script := [][]PeerInfo{{a, self}, {a}, {a, b}, {b2}, {b2}, {a}}
	f := &fakeTracker{reqs: make(chan AnnounceRequest), reply: func(n int, _ AnnounceRequest) (AnnounceResponse, error) {
		return AnnounceResponse{IntervalS: 0.001, Peers: script[min(n, len(script))-1]}, nil
	}}
	got := make(chan []PeerInfo, 10)
	cfg := fastConfig(f)
	cfg.OnPeers = func(p []PeerInfo) { got <- p }
	_, cancel, done := startAnnouncer(t, cfg)
	for range script {
		<-f.reqs
	}
	cancel()
	for r := range f.reqs {
		if r.Event == EventStopped {
			break
		}
	}
	<-done
	close(got)
	var calls []string
	for ps := range got {
		s := ""
		for _, p := range ps {
			s += p.Peer + p.Addrs[0][len(p.Addrs[0])-1:]
		}
		calls = append(calls, s)
	}
	want := []string{"A1", "B2", "B3", "A1"}
	if len(calls) != len(want) {
		t.Fatalf("OnPeers calls %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("OnPeers calls %v, want %v", calls, want)
		}
	}
}

func TestAnnouncerBackoffBounds(t *testing.T) {
	a, err := NewAnnouncer(AnnouncerConfig{
		Tracker: &fakeTracker{}, Content: testContent("a"), Peer: "self",
		RetryMin: time.Second, RetryMax: 30 * time.Second, Rand: rand.New(rand.NewPCG(3, 4)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 12; n++ {
		ceil := min(time.Second<<(n-1), 30*time.Second)
		if d := a.backoff(n); d < ceil/2 || d > ceil {
			t.Errorf("backoff(%d) = %v, want in [%v, %v]", n, d, ceil/2, ceil)
		}
	}
}

func TestAnnouncerIntervalClamp(t *testing.T) {
	a, err := NewAnnouncer(AnnouncerConfig{Tracker: &fakeTracker{}, Content: testContent("a"), Peer: "self",
		MinInterval: 2 * time.Second, MaxInterval: time.Minute, DefaultInterval: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		resp AnnounceResponse
		want time.Duration
	}{
		{AnnounceResponse{IntervalS: 30}, 30 * time.Second},
		{AnnounceResponse{}, 20 * time.Second},
		{AnnounceResponse{IntervalS: 0.5}, 2 * time.Second},
		{AnnounceResponse{IntervalS: 5, MinIntervalS: 10}, 10 * time.Second},
		{AnnounceResponse{IntervalS: 3600}, time.Minute},
	} {
		if got := a.interval(c.resp); got != c.want {
			t.Errorf("interval(%+v) = %v, want %v", c.resp, got, c.want)
		}
	}
}

func TestNewAnnouncerRejectsBadConfig(t *testing.T) {
	for _, cfg := range []AnnouncerConfig{
		{Content: testContent("a"), Peer: "p"},                                                   // no tracker
		{Tracker: &fakeTracker{}, Peer: "p"},                                                     // no content
		{Tracker: &fakeTracker{}, Content: testContent("a")},                                     // no peer
		{Tracker: &fakeTracker{}, Content: testContent("a"), Peer: "p", Addrs: []string{"nope"}}, // bad addr
	} {
		if _, err := NewAnnouncer(cfg); !errors.Is(err, ErrBadAnnouncerConfig) {
			t.Errorf("NewAnnouncer(%+v) = %v, want ErrBadAnnouncerConfig", cfg, err)
		}
	}
}
