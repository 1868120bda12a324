package swarm

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// queueWaiters starts n senders of size bytes each on b and counts those
// let through.
func queueWaiters(t *testing.T, b *Bucket, n, size int) *atomic.Int64 {
	t.Helper()
	var done atomic.Int64
	for range n {
		go func() {
			if err := b.Wait(t.Context(), size); err != nil {
				if t.Context().Err() == nil {
					t.Errorf("Wait: %v", err)
				}
				return
			}
			done.Add(1)
		}()
	}
	synctest.Wait() // every sender has reserved its bytes
	return &done
}

// after lets d of virtual time pass and every sender woken in it finish.
func after(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// TestBucketSetRateAppliesToQueuedSenders runs on virtual time: senders
// already waiting under a cap go at the new rate from the moment it
// changes, faster or slower, and a rate of 0 lets them all go.
func TestBucketSetRateAppliesToQueuedSenders(t *testing.T) {
	const chunk = 256 << 10
	tests := []struct {
		name      string
		rate      float64       // the cap the senders queue under
		change    time.Duration // when SetRate is called
		newRate   float64
		check     time.Duration // when the count is taken
		wantPrior int64         // senders through by change, at the first rate
		wantSent  int64         // senders through by check
		unchanged int64         // what the old rate would have let through
	}{
		// 8 senders of one chunk, a chunk's burst: one at once, then one
		// per second at 256 KiB/s. Raised to 1 MiB/s at 2.5 s, the five
		// left are through by 3.625 s, not 7 s.
		{"faster", chunk, 2500 * time.Millisecond, 4 * chunk, 3700 * time.Millisecond, 3, 8, 4},
		// At 1 MiB/s one every 250 ms (two through by 0.3 s, 8 by 1.75 s);
		// lowered to 128 KiB/s at 0.3 s the third goes at 1.9 s, the fourth
		// at 3.9 s.
		{"slower", 4 * chunk, 300 * time.Millisecond, chunk / 2, 4 * time.Second, 2, 4, 8},
		{"uncapped", chunk, 1500 * time.Millisecond, 0, 1600 * time.Millisecond, 2, 8, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBucket(tt.rate, nil)
				done := queueWaiters(t, b, 8, chunk)
				after(tt.change)
				before := done.Load()
				if before != tt.wantPrior {
					t.Fatalf("%d of 8 senders through after %v at the first rate; want %d", before, tt.change, tt.wantPrior)
				}
				b.SetRate(tt.newRate)
				after(tt.check - tt.change)
				got := done.Load()
				t.Logf("%d senders through at %v (%d before the change at %v)", got, tt.check, before, tt.change)
				if got != tt.wantSent {
					t.Fatalf("%d of 8 senders through after %v; want %d (the old rate would give %d)", got, tt.check, tt.wantSent, tt.unchanged)
				}
				after(time.Minute)
				if n := done.Load(); n != 8 {
					t.Fatalf("%d of 8 senders through after a minute", n)
				}
			})
		})
	}
}

// TestBucketCapFromUncapped: a bucket made without a cap takes one later,
// for senders from then on.
func TestBucketCapFromUncapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const chunk = 256 << 10
		b := NewBucket(0, nil)
		if err := b.Wait(context.Background(), 64*chunk); err != nil {
			t.Fatal(err)
		}
		b.SetRate(chunk)
		if b.Rate() != chunk {
			t.Fatalf("Rate() = %v after SetRate(%d)", b.Rate(), chunk)
		}
		done := queueWaiters(t, b, 4, chunk)
		after(1500 * time.Millisecond)
		if n := done.Load(); n != 2 {
			t.Fatalf("%d of 4 senders through after 1.5 s at one chunk per second after a burst of one; want 2", n)
		}
	})
}
