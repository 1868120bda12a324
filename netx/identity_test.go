package netx

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func dailyID(t *testing.T, seed []byte, day int64) PeerID {
	t.Helper()
	k, err := DailyKey(seed, day)
	if err != nil {
		t.Fatal(err)
	}
	id, err := PeerIDFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDailyIdentity: one seed and day give one ID; another day or another
// seed gives another.
func TestDailyIdentity(t *testing.T) {
	seedA, seedB := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	day := Day(time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC))
	if next := Day(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); next != day+1 {
		t.Fatalf("Day at midnight = %d, want %d", next, day+1)
	}
	if Day(time.Date(2026, 11, 30, 0, 0, 0, 0, time.FixedZone("UTC+2", 7200))) != day-1 {
		t.Fatal("Day does not count in UTC")
	}
	a := dailyID(t, seedA, day)
	if again := dailyID(t, seedA, day); again != a {
		t.Errorf("same seed and day: %s then %s", a, again)
	}
	if next := dailyID(t, seedA, day+1); next == a {
		t.Errorf("next day kept ID %s", a)
	}
	if other := dailyID(t, seedB, day); other == a {
		t.Errorf("another seed gave the same ID %s", a)
	}
	if _, err := DailyKey(seedA[:16], day); err == nil {
		t.Error("a 16-byte seed was accepted")
	}
}

// TestDailyIdentityHost: a host started with IdentityDaily creates its seed
// 0600 in the state dir and, restarted the same day, has the same ID; no
// fixed key file is written.
func TestDailyIdentityHost(t *testing.T) {
	dir := t.TempDir()
	start := func() PeerID {
		h, err := NewLibp2pHost(context.Background(), Libp2pConfig{StateDir: dir, Identity: IdentityDaily, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		return h.ID()
	}
	first := start()
	fi, err := os.Stat(filepath.Join(dir, SeedFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("seed file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFileName)); err == nil {
		t.Error("daily identity wrote a fixed key file")
	}
	seed, err := os.ReadFile(filepath.Join(dir, SeedFileName))
	if err != nil {
		t.Fatal(err)
	}
	if want := dailyID(t, seed, Day(time.Now())); first != want && dailyID(t, seed, Day(time.Now())-1) != first {
		t.Errorf("host ID %s is not the day's key %s", first, want)
	}
	if second := start(); second != first && Day(time.Now()) == Day(time.Now().Add(-time.Minute)) {
		t.Errorf("restart the same day changed ID %s to %s", first, second)
	}
	if _, err := ParseIdentity("weekly"); err == nil {
		t.Error("ParseIdentity accepted weekly")
	}
}
