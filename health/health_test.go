package health

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestProbesAnswerAheadOfTheDaemon(t *testing.T) {
	var c Checks
	var cacheErr error
	c.Add("cache", func() error { return cacheErr })
	nextCalled := 0
	h := Route(&c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nextCalled++
		http.Error(w, "rate limited", http.StatusTooManyRequests)
	}))
	if code, body := get(t, h, "GET", "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, h, "GET", "/readyz"); code != 200 || body != "ok\n" {
		t.Fatalf("/readyz ready: %d %q", code, body)
	}
	cacheErr = errors.New("not writable (disk full)")
	if code, body := get(t, h, "GET", "/readyz"); code != 503 || body != "not ready: cache: not writable (disk full)\n" {
		t.Fatalf("/readyz not ready: %d %q", code, body)
	}
	if code, body := get(t, h, "HEAD", "/readyz"); code != 503 || body != "" {
		t.Fatalf("HEAD /readyz: %d %q", code, body)
	}
	if code, _ := get(t, h, "GET", "/healthz"); code != 200 {
		t.Fatalf("/healthz must stay 200 while not ready, got %d", code)
	}
	if nextCalled != 0 {
		t.Fatalf("probes reached the daemon's handler %d times", nextCalled)
	}
	if code, _ := get(t, h, "POST", "/healthz"); code != 429 || nextCalled != 1 {
		t.Fatalf("POST /healthz: %d, next called %d: only GET and HEAD are probes", code, nextCalled)
	}
}
