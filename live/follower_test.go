package live

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

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
