package live

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

// fakeOrigin serves one channel's latest update from memory, conditionally,
// and counts the requests.
type fakeOrigin struct {
	mu       sync.Mutex
	latest   []byte // guarded by mu
	etag     string // guarded by mu
	requests int    // guarded by mu
	notMod   int    // guarded by mu: requests answered 304
}

func (o *fakeOrigin) set(b []byte, etag string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.latest, o.etag = b, etag
}

func (o *fakeOrigin) counts() (requests, notModified int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.requests, o.notMod
}

func (o *fakeOrigin) Get(ctx context.Context, p string, limit int64) ([]byte, error) {
	b, _, _, err := o.GetIfNoneMatch(ctx, p, "", limit)
	return b, err
}

func (o *fakeOrigin) GetIfNoneMatch(_ context.Context, _, etag string, _ int64) ([]byte, string, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests++
	if etag != "" && etag == o.etag {
		o.notMod++
		return nil, etag, false, nil
	}
	return o.latest, o.etag, true, nil
}

var _ ConditionalGetter = (*fakeOrigin)(nil)

func newsFollower(o Getter) *Follower {
	return NewFollower(FollowerConfig{Channel: manifest.ChannelIDOf(manifest.PublicOf(testKey(1)), "news"), Trust: manifest.PublicOf(testKey(1)), Origin: o})
}

// TestFollowerPollsOncePerTargetDuration: with nothing else feeding it, a
// follower polls the origin once per one to one and a half target
// durations (2 s here), not several times a second, and a poll that finds
// the update it holds is conditional (a 304).
func TestFollowerPollsOncePerTargetDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &fakeOrigin{}
		o.set(signedUpdate(t, 1, 5), `"v5"`)
		f := newsFollower(o)
		ctx, cancel := context.WithCancel(t.Context())
		if err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { f.Run(ctx); close(done) }()
		time.Sleep(60 * time.Second)
		cancel()
		<-done
		req, notMod := o.counts()
		// One first poll, then 60 s / (2 to 3 s).
		if req < 1+20 || req > 1+30 {
			t.Fatalf("%d origin requests in 60 s at a 2 s target duration, want 21 to 31", req)
		}
		if notMod != req-1 {
			t.Fatalf("%d of %d polls answered 304, want all but the first", notMod, req)
		}
		if f.Polls() != int64(req) {
			t.Fatalf("Polls() = %d, origin saw %d", f.Polls(), req)
		}
	})
}

// TestFollowerHeardByGossipDoesNotPoll: an update accepted from elsewhere
// (gossip) postpones the next poll, so while updates keep arriving once per
// target duration the follower never asks the origin.
func TestFollowerHeardByGossipDoesNotPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &fakeOrigin{}
		f := newsFollower(o)
		if _, err := f.Offer(signedUpdate(t, 1, 1)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { f.Run(ctx); close(done) }()
		for seq := uint64(2); seq <= 31; seq++ {
			time.Sleep(2 * time.Second) // one target duration
			if _, err := f.Offer(signedUpdate(t, 1, seq)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		cancel()
		<-done
		if req, _ := o.counts(); req != 0 {
			t.Fatalf("%d origin requests while gossip brought every update, want 0", req)
		}
	})
}

// TestFollowerKeepsPollingAfterTheEnd: a final update (EXT-X-ENDLIST) does
// not end Run, so a channel restarted by its publisher (higher sequence
// numbers) is picked up.
func TestFollowerKeepsPollingAfterTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &fakeOrigin{}
		end := &manifest.ChannelUpdate{
			Channel: "news", Seq: 5, TargetDuration: 2, MediaSequence: 5, Ended: true,
			Segments: []manifest.ChannelSegment{{Seq: 5, Name: "s.ts", DurationMs: 2000, Size: 10}},
		}
		if err := end.Sign(testKey(1)); err != nil {
			t.Fatal(err)
		}
		b, _ := end.Encode()
		o.set(b, `"end"`)
		f := newsFollower(o)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		if err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		go f.Run(ctx)
		time.Sleep(10 * time.Second)
		o.set(signedUpdate(t, 1, 9), `"restart"`)
		time.Sleep(4 * time.Second) // at most 1.5 target durations to the next poll
		synctest.Wait()
		if u, _ := f.Latest(); u.Seq != 9 || u.Ended {
			t.Fatalf("after the restart the follower holds update %d (ended %v), want 9", u.Seq, u.Ended)
		}
	})
}

// TestFollowerPollsFollowThePublication: a poller learns when updates
// appear (their signed creation time, one per segment) and polls just
// after the next is due, so it holds each update within a fraction of a
// segment of its publication, still polling at most once per target
// duration. (Virtual time: the delays are exact, not measured.)
func TestFollowerPollsFollowThePublication(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &fakeOrigin{}
		publish := func(seq uint64) {
			u := &manifest.ChannelUpdate{
				Channel: "news", Seq: seq, Created: time.Now(), TargetDuration: 2, MediaSequence: seq,
				Segments: []manifest.ChannelSegment{{Seq: seq, Name: "s.ts", DurationMs: 2000, Size: 10, Content: core.ContentID(core.SumSHA256([]byte{byte(seq)}))}},
			}
			if err := u.Sign(testKey(1)); err != nil {
				t.Error(err)
				return
			}
			b, err := u.Encode()
			if err != nil {
				t.Error(err)
				return
			}
			o.set(b, fmt.Sprintf(`"v%d"`, seq))
		}
		publish(1)
		time.Sleep(1300 * time.Millisecond) // the viewer arrives mid-segment
		f := newsFollower(o)
		var mu sync.Mutex
		var delays []time.Duration
		f.OnUpdate(func(u *manifest.ChannelUpdate, _ []byte) {
			mu.Lock()
			delays = append(delays, time.Since(u.Created))
			mu.Unlock()
		})
		ctx, cancel := context.WithCancel(t.Context())
		if err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { f.Run(ctx); close(done) }()
		const updates = 40
		for seq := uint64(2); seq <= updates; seq++ {
			time.Sleep(2 * time.Second)
			publish(seq)
		}
		time.Sleep(3 * time.Second)
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(delays) < updates-1 {
			t.Fatalf("held %d of %d updates (delays %v)", len(delays), updates, delays)
		}
		late := 0
		for _, d := range delays[5:] {
			if d > 700*time.Millisecond {
				late++
			}
		}
		if late > 0 {
			t.Errorf("%d of %d updates held more than 0.7 s after publication (delays %v)", late, len(delays)-5, delays)
		}
		req, _ := o.counts()
		// 2 s segments over about 79 s: at most one poll per target duration.
		if span := 1.3 + 2*float64(updates-1) + 3; float64(req) > 1+span/2 {
			t.Errorf("%d origin requests over %.0f s, more than one per 2 s target duration", req, span)
		}
	})
}
