package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func readLines(t *testing.T, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q is not a JSON event: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestWriterPseudonymisesIPs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := NewWriter(WriterConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	day2 := t0.Add(DefaultKeyRotation)
	w.Record(Event{Time: t0, Kind: KindJoin, Content: "c1", Peer: "p1", IP: "198.18.0.7:4001"})
	w.Record(Event{Time: t0.Add(time.Hour), Kind: KindLeave, Content: "c1", Peer: "p1", IP: "198.18.0.7"})
	w.Record(Event{Time: t0, Kind: KindJoin, Peer: "p2", IP: "198.18.0.8"})
	w.Record(Event{Time: day2, Kind: KindJoin, Peer: "p1", IP: "198.18.0.7"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), "198.18.0.") {
		t.Fatalf("the log holds a raw address:\n%s", raw)
	}
	ev := readLines(t, path)
	if len(ev) != 4 {
		t.Fatalf("%d lines, want 4", len(ev))
	}
	if !strings.HasPrefix(ev[0].IP, "~") || len(ev[0].IP) != 17 {
		t.Fatalf("pseudonym %q: want ~ and 16 characters", ev[0].IP)
	}
	if ev[0].IP != ev[1].IP {
		t.Fatalf("one address (with and without port) in one period got %q and %q", ev[0].IP, ev[1].IP)
	}
	if ev[0].IP == ev[2].IP {
		t.Fatal("two addresses got one pseudonym")
	}
	if ev[0].IP == ev[3].IP {
		t.Fatal("the pseudonym key did not rotate after a period")
	}
	if ev[0].Kind != KindJoin || ev[0].Peer != "p1" || !ev[0].Time.Equal(t0) {
		t.Fatalf("first event read back as %+v", ev[0])
	}
}

func TestWriterRawIPs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := NewWriter(WriterConfig{Path: path, RawIPs: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Record(Event{Kind: KindBan, Peer: "p1", IP: "198.18.0.7", Reason: "bad chunk", Until: t0})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ev := readLines(t, path)
	if len(ev) != 1 || ev[0].IP != "198.18.0.7" || ev[0].Time.IsZero() || !ev[0].Until.Equal(t0) {
		t.Fatalf("read back %+v, want the raw address, a time stamp and the ban's end", ev)
	}
}

func TestWriterRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	w, err := NewWriter(WriterConfig{Path: path, MaxSize: 1 << 20, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1000)
	n := 0
	// Each event is about 1.1 KB: 5 MiB of them rotate the file 4 times.
	// Record drops rather than waits, so pace it by what was written.
	for n < 4800 {
		w.Record(Event{Time: t0, Kind: KindRevoked, Content: "c", Reason: pad})
		n++
		for w.written.Load()+w.Dropped() < uint64(n)-100 && n > 100 {
			time.Sleep(time.Millisecond)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Old files are deleted in the background after a rotation: poll.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir(dir)
		var total int64
		for _, e := range ents {
			fi, _ := e.Info()
			total += fi.Size()
			if fi.Size() > 1<<20 {
				t.Fatalf("%s is %d bytes, over the 1 MiB limit", e.Name(), fi.Size())
			}
		}
		if len(ents) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d files after rotation with keep 2, want the log and 2 old ones", len(ents))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blockingOut holds every write until released.
type blockingOut struct {
	entered chan struct{} // gets a value when a write starts
	release chan struct{}
	once    sync.Once
}

func (b *blockingOut) Write(p []byte) (int, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	return len(p), nil
}
func (b *blockingOut) Close() error { b.once.Do(func() { close(b.release) }); return nil }

func TestWriterDropsWhenQueueFull(t *testing.T) {
	out := &blockingOut{entered: make(chan struct{}, 1), release: make(chan struct{})}
	w := newWriter(WriterConfig{Path: "test", Queue: 4}, out)
	// The first event reaches the writing goroutine, which then blocks
	// in its flush; 4 more fill the queue; the rest must be dropped
	// without Record waiting.
	w.Record(Event{Kind: KindJoin, Peer: "p"})
	<-out.entered
	for range 99 {
		w.Record(Event{Kind: KindJoin, Peer: "p"})
	}
	if d := w.Dropped(); d != 99-4 {
		t.Fatalf("dropped %d of 99 events with the writer stuck and a queue of 4, want %d", d, 99-4)
	}
	close(out.release)
	out.once.Do(func() {})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.written.Load() + w.Dropped(); got != 100 {
		t.Fatalf("written %d + dropped %d = %d, want 100", w.written.Load(), w.Dropped(), got)
	}
}

func TestNewWriterRejectsBadPath(t *testing.T) {
	if _, err := NewWriter(WriterConfig{}); err == nil {
		t.Fatal("no path accepted")
	}
	if _, err := NewWriter(WriterConfig{Path: filepath.Join(t.TempDir(), "missing", "dir", "\x00")}); err == nil {
		t.Fatal("an unusable path accepted")
	}
}

// BenchmarkWriterRecord is the caller's cost per event (Record: stamp and
// queue). Events the writer cannot keep up with are dropped and reported.
func BenchmarkWriterRecord(b *testing.B) {
	for _, raw := range []bool{false, true} {
		name := "pseudonymised"
		if raw {
			name = "raw-ips"
		}
		b.Run(name, func(b *testing.B) {
			w, err := NewWriter(WriterConfig{Path: filepath.Join(b.TempDir(), "audit.log"), RawIPs: raw, Queue: 1 << 16})
			if err != nil {
				b.Fatal(err)
			}
			e := benchEvent
			b.ReportAllocs()
			for b.Loop() {
				w.Record(e)
			}
			// Count the cost of writing too: wait for the queue to drain.
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(w.Dropped()), "dropped")
		})
	}
}

// BenchmarkWriterWrite is the writing goroutine's cost per event:
// pseudonymise, encode, buffered write to the file (rotation included).
func BenchmarkWriterWrite(b *testing.B) {
	for _, raw := range []bool{false, true} {
		name := "pseudonymised"
		if raw {
			name = "raw-ips"
		}
		b.Run(name, func(b *testing.B) {
			w, err := NewWriter(WriterConfig{Path: filepath.Join(b.TempDir(), "audit.log"), RawIPs: raw})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			e := benchEvent
			b.ReportAllocs()
			for b.Loop() {
				w.write(e) // the goroutine is idle: nothing is recorded
			}
			b.StopTimer()
			if err := w.bw.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

var benchEvent = Event{Time: t0, Kind: KindJoin, Tenant: "acme", Content: "Ab3xYzAb3xYzAb3xYzAb3xYzAb3xYzAb3xYzAb3xYzA", Peer: "12D3KooWGzUZ4ZvXb2nR6Qn1YcXrX1HhX5gU6nYQ9Jc5kqJm4pQ", IP: "198.18.3.4:4001"}
