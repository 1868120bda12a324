package accesslog

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fields every line carries, whatever the daemon: the format's contract.
var requiredFields = []string{"time", "daemon", "remote", "method", "path", "status", "bytes", "duration_ms", "request_id"}

// readLines parses a log file written by Log into one map per line, and
// fails t when a line is not JSON or lacks a required field.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		for _, k := range requiredFields {
			if _, ok := m[k]; !ok {
				t.Fatalf("line %q lacks %q", sc.Text(), k)
			}
		}
		out = append(out, m)
	}
	return out
}

func TestEveryRequestIsOneLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	h := l.Wrap("origin", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.NotFound(w, r)
		case "/stream":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "abc")
			http.NewResponseController(w).Flush() // must reach the connection through the recorder
			io.WriteString(w, "def")
		default: // writes nothing: 200, 0 bytes
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/stream", nil)
	req.Header.Set("Range", "bytes=0-5")
	req.Header.Set("User-Agent", "shoal-test/1")
	req.Header.Set(RequestIDHeader, "client-chosen-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "abcdef" || resp.Header.Get(RequestIDHeader) != "client-chosen-42" {
		t.Fatalf("stream: body %q, request id %q", body, resp.Header.Get(RequestIDHeader))
	}
	for _, p := range []string{"/missing", "/empty"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if id := resp.Header.Get(RequestIDHeader); len(id) != 24 {
			t.Fatalf("%s: made-up request id %q, want 24 hex digits", p, id)
		}
	}
	srv.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %d: %v", len(lines), lines)
	}
	got := lines[0]
	want := map[string]any{"daemon": "origin", "method": "GET", "path": "/stream", "status": 206.0, "bytes": 6.0,
		"range": "bytes=0-5", "user_agent": "shoal-test/1", "request_id": "client-chosen-42"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if r, _ := got["remote"].(string); !strings.HasPrefix(r, "~") || strings.Contains(r, "127.0.0.1") {
		t.Errorf("remote %q: want a pseudonym, not the address", r)
	}
	if lines[1]["status"] != 404.0 || lines[2]["status"] != 200.0 || lines[2]["bytes"] != 0.0 {
		t.Errorf("missing/empty lines: %v / %v", lines[1], lines[2])
	}
	if lines[1]["remote"] != got["remote"] {
		t.Errorf("one client, two pseudonyms: %v and %v", got["remote"], lines[1]["remote"])
	}
}

func TestRawIPsAndRefusedRequestIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := Open(Config{Path: path, RawIPs: true})
	if err != nil {
		t.Fatal(err)
	}
	h := l.Wrap("gateway", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, id := range []string{strings.Repeat("x", maxRequestID+1), "has space", `quo"te`} {
		r := httptest.NewRequest("GET", "/c/x", nil)
		r.Header.Set(RequestIDHeader, id)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if got := rec.Header().Get(RequestIDHeader); got == id || len(got) != 24 {
			t.Fatalf("request id %q kept or not replaced: %q", id, got)
		}
	}
	l.Close()
	for _, line := range readLines(t, path) {
		if line["remote"] != "192.0.2.1:1234" { // httptest.NewRequest's address
			t.Fatalf("RawIPs: remote %v", line["remote"])
		}
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	if _, err := Open(Config{}); err == nil {
		t.Fatal("no path: want an error")
	}
	if _, err := Open(Config{Path: filepath.Join(t.TempDir(), "no", "such", "dir", "\x00")}); err == nil {
		t.Fatal("unwritable path: want an error")
	}
	var l *Log
	h := http.NotFoundHandler()
	if got := l.Wrap("origin", h); got == nil {
		t.Fatal("nil Log: Wrap must return the handler")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
