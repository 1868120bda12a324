package origin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape returns the value of the sample whose line starts with series.
func scrape(t *testing.T, url, series string) float64 {
	t.Helper()
	_, body := do(t, "GET", url+"/metrics", nil)
	for line := range strings.SplitSeq(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return v
		}
	}
	return 0 // absent: a counter not yet touched
}

func TestMetricsMove(t *testing.T) {
	f := newFixture(t)
	s, ts := start(t, f, 0)
	const (
		ok200   = `shoal_origin_requests_total{code="200",method="GET"}`
		nf404   = `shoal_origin_requests_total{code="404",method="GET"}`
		bad405  = `shoal_origin_requests_total{code="405",method="other"}`
		bytesTT = `shoal_origin_response_bytes_total`
		inFl    = `shoal_origin_in_flight_requests`
	)
	if v := scrape(t, ts.URL, ok200); v != 0 {
		t.Fatalf("%s = %v before any request", ok200, v)
	}
	do(t, "GET", ts.URL+"/"+f.chunk, nil)
	do(t, "GET", ts.URL+"/"+f.feed, nil)
	do(t, "GET", ts.URL+"/missing", nil)
	do(t, "BREW", ts.URL+"/"+f.chunk, nil)
	want := float64(len(f.files[f.chunk]) + len(f.files[f.feed]))
	for series, v := range map[string]float64{ok200: 2, nf404: 1, bad405: 1, inFl: 0} {
		if got := scrape(t, ts.URL, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	// 404 and 405 bodies count as egress too; the files alone are a floor.
	got := scrape(t, ts.URL, bytesTT)
	if got < want || got != float64(s.BytesServed()) {
		t.Errorf("%s = %v, BytesServed %d; want equal and ≥ %v", bytesTT, got, s.BytesServed(), want)
	}
	if s.Requests() != 4 {
		t.Errorf("Requests() = %d, want 4 (scrapes excluded)", s.Requests())
	}
}

func TestBytesServedCountsBodies(t *testing.T) {
	f := newFixture(t)
	s, ts := start(t, f, 0)
	var total int64
	for _, p := range []string{f.chunk, f.hashes, f.manifest, f.feed, f.chunk} {
		_, body := do(t, "GET", ts.URL+"/"+p, nil)
		total += int64(len(body))
	}
	_, body := do(t, "GET", ts.URL+"/"+f.chunk, map[string]string{"Range": "bytes=10-19"})
	total += int64(len(body))
	if s.BytesServed() != total || len(body) != 10 {
		t.Fatalf("BytesServed %d, want %d (range body %d bytes)", s.BytesServed(), total, len(body))
	}
}

func TestUploadLimitConfiguresSharedBucket(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		limit float64
		burst int
	}{
		{100e6, maxWriteChunk}, // fast: chunks capped at 64 KiB
		{100_000, 5000},        // 1/20 s worth
		{10, 512},              // slow: floor
	} {
		s, err := New(Config{Dir: f.dir, UploadLimit: tt.limit})
		if err != nil {
			t.Fatal(err)
		}
		if float64(s.limiter.Limit()) != tt.limit || s.limiter.Burst() != tt.burst || s.chunk != tt.burst {
			t.Errorf("limit %v: limiter %v/s burst %d chunk %d; want burst and chunk %d",
				tt.limit, s.limiter.Limit(), s.limiter.Burst(), s.chunk, tt.burst)
		}
	}
	s, err := New(Config{Dir: f.dir})
	if err != nil || s.limiter != nil {
		t.Fatalf("UploadLimit 0: limiter %v err %v; want none", s.limiter, err)
	}
}

// TestUploadLimitThrottlesAcrossResponses relies on rate.Limiter refusing
// at once a wait that would outlast the context's deadline: at 0.01 B/s the
// bucket holds one burst, the rest would take days, so exactly one burst
// gets out, shared by all responses. No clocks are read.
func TestUploadLimitThrottlesAcrossResponses(t *testing.T) {
	f := newFixture(t)
	s, err := New(Config{Dir: f.dir, UploadLimit: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	burst := s.limiter.Burst()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	get := func(p string) *maxWriteRecorder {
		rec := &maxWriteRecorder{ResponseRecorder: httptest.NewRecorder()}
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/"+p, nil).WithContext(ctx))
		return rec
	}
	first := get(f.chunk)
	if first.Body.Len() != burst {
		t.Fatalf("first response got %d bytes, want one burst (%d) of %d", first.Body.Len(), burst, len(f.files[f.chunk]))
	}
	if first.maxWrite > s.chunk {
		t.Fatalf("largest write %d bytes, want ≤ %d", first.maxWrite, s.chunk)
	}
	second := get(f.hashes) // 96 bytes: fits a chunk, but the bucket is empty
	if second.Body.Len() != 0 {
		t.Fatalf("second response got %d bytes from an empty shared bucket, want 0", second.Body.Len())
	}
	if s.BytesServed() != int64(burst) {
		t.Fatalf("BytesServed %d, want %d", s.BytesServed(), burst)
	}
}

// maxWriteRecorder records the largest single body write.
type maxWriteRecorder struct {
	*httptest.ResponseRecorder
	maxWrite int
}

func (r *maxWriteRecorder) Write(p []byte) (int, error) {
	r.maxWrite = max(r.maxWrite, len(p))
	return r.ResponseRecorder.Write(p)
}

// addrHandler passes the "addr" attribute of log records to a channel.
type addrHandler struct {
	slog.Handler
	addrs chan<- string
}

func newAddrLogger(addrs chan<- string) *slog.Logger {
	return slog.New(addrHandler{slog.DiscardHandler, addrs})
}

func (h addrHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h addrHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "addr" {
			select {
			case h.addrs <- a.Value.String():
			default:
			}
		}
		return true
	})
	return nil
}

func BenchmarkGet4MiB(b *testing.B) {
	dir := b.TempDir()
	const size = 4 << 20
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), content("big", size), 0o644); err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	url := ts.URL + "/big.bin"
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size {
			b.Fatalf("got %d bytes, err %v", n, err)
		}
	}
	b.StopTimer()
	if got := s.BytesServed(); got < size {
		b.Fatal(fmt.Sprintf("BytesServed %d", got))
	}
}
