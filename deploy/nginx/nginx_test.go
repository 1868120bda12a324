package nginx

import (
	"strings"
	"testing"
)

func TestParseLogLine(t *testing.T) {
	r, err := ParseLogLine(`GET /chunks/ab/x 206 5 "-" "bytes=2-6"`)
	if err != nil || r != (Request{Method: "GET", Path: "/chunks/ab/x", Status: 206, Body: 5, Range: "bytes=2-6"}) {
		t.Errorf("got %+v, %v", r, err)
	}
	r, err = ParseLogLine(`HEAD /manifests/m?x=1 200 0 "gzip" "-"`)
	if err != nil || r.Encoding != "gzip" || r.Range != "" || r.Method != "HEAD" || r.Path != "/manifests/m" {
		t.Errorf("got %+v, %v", r, err)
	}
	for _, bad := range []string{"", "GET / 200", `0  0 0 0 "" ""`, `GET x 200 5 "-" "-"`, `get / 200 5 "-" "-"`, `GET / x 5 "-" "-"`, `GET / 200 y "-" "-"`, `GET / 200 -1 "-" "-"`, `GET / 200 5 "-"`, `GET / 200 5 "-" "-`} {
		if _, err := ParseLogLine(bad); err == nil {
			t.Errorf("ParseLogLine(%q) accepted", bad)
		}
	}
}

func TestConfigFillsTheServerBlock(t *testing.T) {
	c := Config("/srv/www", "127.0.0.1:8080", "/run/ngx", true)
	for _, want := range []string{"user root;", "listen 127.0.0.1:8080;", "root /srv/www;", "access_log /run/ngx/access.log shoal;", "gzip_types application/json;"} {
		if !strings.Contains(c, want) {
			t.Errorf("config lacks %q", want)
		}
	}
	if strings.Contains(c, "@") {
		t.Errorf("config has an unfilled placeholder:\n%s", c)
	}
	if strings.Contains(Config("/srv/www", "8080", "/run/ngx", false), "user ") {
		t.Error("asRoot false still sets user")
	}
}

func FuzzParseLogLine(f *testing.F) {
	f.Add(`GET /chunks/ab/x 206 5 "-" "bytes=2-6"`)
	f.Add(`HEAD /manifests/m 200 0 "gzip" "-"`)
	f.Add(`GET / 200 5 "-"`)
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseLogLine(line)
		if err != nil {
			return
		}
		if r.Method == "" || r.Path == "" || r.Body < 0 || !strings.HasPrefix(line, r.Method+" "+r.Path) || strings.Contains(r.Path, "?") {
			t.Fatalf("parsed %q into %+v", line, r)
		}
	})
}
