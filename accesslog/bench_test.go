package accesslog

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkWrap is the cost the access log adds to one request (handler
// and recorder, no network): compare with and without the log. The loop
// hands over lines far faster than any real server, so the queue fills and
// most are dropped (reported): the figure is the request side's cost.
func BenchmarkWrap(b *testing.B) {
	body := make([]byte, 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	r := httptest.NewRequest("GET", "/c/ID/app.bin", nil)
	r.Header.Set("Range", "bytes=0-1023")
	run := func(b *testing.B, h http.Handler) {
		w := httptest.NewRecorder()
		b.ReportAllocs()
		for b.Loop() {
			w.Body.Reset()
			h.ServeHTTP(w, r)
		}
	}
	b.Run("off", func(b *testing.B) { run(b, h) })
	b.Run("on", func(b *testing.B) {
		l, err := Open(Config{Path: "bench", Out: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		run(b, l.Wrap("gateway", h))
		if d := l.dropped.Load(); d > 0 {
			b.ReportMetric(float64(d), "dropped")
		}
	})
}
