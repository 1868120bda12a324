// Package nginx holds the nginx server block Shoal documents for serving an
// origin layout (shoal-origin.conf, embedded here), a complete nginx.conf
// around it for running nginx unprivileged-style in a directory of its own
// (tests and benchmarks do), and a reader of the access log that
// configuration writes. It has no other dependency: the test helper
// (internal/nginxtest) and the benchmarks (bench) share it.
package nginx

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ServerBlock is deploy/nginx/shoal-origin.conf, with @LISTEN@ and @ROOT@
// to fill in.
//
//go:embed shoal-origin.conf
var ServerBlock string

// Request is one line of the access log Config writes.
type Request struct {
	Method   string
	Path     string // as requested, without the query
	Status   int
	Body     int64  // $body_bytes_sent: the body as sent (compressed if it was, chunked framing included)
	Encoding string // Content-Encoding of the answer, "" if none
	Range    string // the request's Range header, "" if none
}

// logFormat writes Request's fields, space-separated (the quoted ones are
// "-" when empty). $request_uri is the path as the client sent it (never
// with a space), query included.
const logFormat = `$request_method $request_uri $status $body_bytes_sent "$sent_http_content_encoding" "$http_range"`

// AccessLog is the access log's name inside Config's directory.
const AccessLog = "access.log"

// Config is a complete nginx.conf that serves the layout at root on listen
// (host:port) with ServerBlock, in the foreground, keeping its pid file,
// logs and temporary files in dir. asRoot makes the workers run as root
// (for a root caller whose files are in 0700 directories nobody else may
// read).
func Config(root, listen, dir string, asRoot bool) string {
	block := strings.NewReplacer("@LISTEN@", listen, "@ROOT@", root).Replace(ServerBlock)
	user := ""
	if asRoot {
		user = "user root;\n"
	}
	return user + `daemon off;
worker_processes 1;
pid ` + filepath.Join(dir, "nginx.pid") + `;
error_log ` + filepath.Join(dir, "error.log") + ` warn;
events { worker_connections 1024; }
http {
    log_format shoal '` + logFormat + `';
    access_log ` + filepath.Join(dir, AccessLog) + ` shoal;
    client_body_temp_path ` + filepath.Join(dir, "body") + `;
    proxy_temp_path ` + filepath.Join(dir, "proxy") + `;
    fastcgi_temp_path ` + filepath.Join(dir, "fastcgi") + `;
    uwsgi_temp_path ` + filepath.Join(dir, "uwsgi") + `;
    scgi_temp_path ` + filepath.Join(dir, "scgi") + `;
    sendfile on;
    keepalive_timeout 30s;
` + block + `
}
`
}

// Binary finds the nginx executable: on PATH, or Debian's /usr/sbin/nginx
// (which a non-root PATH may lack).
func Binary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if st, err := os.Stat("/usr/sbin/nginx"); err == nil && !st.IsDir() {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("nginx not found on PATH or in /usr/sbin: install it (apt-get install -y nginx-light)")
}

// ReadLog reads every request of the access log at path (none if it does
// not exist yet).
func ReadLog(path string) ([]Request, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []Request
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		r, err := ParseLogLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rs = append(rs, r)
	}
	return rs, sc.Err()
}

// ParseLogLine reads one line of the access log.
func ParseLogLine(line string) (Request, error) {
	var r Request
	head, quoted, ok := strings.Cut(line, ` "`)
	f := strings.Split(head, " ")
	if !ok || len(f) != 4 {
		return r, fmt.Errorf("access log line %q: want 4 fields split by single spaces and 2 quoted ones", line)
	}
	var err error
	r.Method = f[0]
	if r.Method == "" || strings.Trim(r.Method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return r, fmt.Errorf("access log line %q: method: want upper-case letters, got %q", line, r.Method)
	}
	r.Path, _, _ = strings.Cut(f[1], "?")
	if !strings.HasPrefix(r.Path, "/") {
		return r, fmt.Errorf("access log line %q: path: want one starting with /, got %q", line, r.Path)
	}
	if r.Status, err = strconv.Atoi(f[2]); err != nil {
		return r, fmt.Errorf("access log line %q: status: %w", line, err)
	}
	if r.Body, err = strconv.ParseInt(f[3], 10, 64); err != nil || r.Body < 0 {
		return r, fmt.Errorf("access log line %q: bytes: want a count, got %q", line, f[3])
	}
	enc, rng, ok := strings.Cut(quoted, `" "`)
	if !ok || !strings.HasSuffix(rng, `"`) {
		return r, fmt.Errorf("access log line %q: want 2 quoted fields", line)
	}
	rng = strings.TrimSuffix(rng, `"`)
	if enc != "-" {
		r.Encoding = enc
	}
	if rng != "-" {
		r.Range = rng
	}
	return r, nil
}

// ReadSettledLog waits until the access log at path has not grown for
// quiet (nginx logs a request just after answering it, so a reader right
// after the last response could miss that one), at most timeout, then
// reads it as ReadLog does.
func ReadSettledLog(path string, quiet, timeout time.Duration) ([]Request, error) {
	end := time.Now().Add(timeout)
	var last int64 = -1
	since := time.Now()
	for {
		var n int64
		if st, err := os.Stat(path); err == nil {
			n = st.Size()
		}
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return ReadLog(path)
		}
		if time.Now().After(end) {
			return nil, fmt.Errorf("nginx access log %s still growing after %v", path, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Totals sums requests and body bytes of rs.
func Totals(rs []Request) (requests int, bytes int64) {
	for _, r := range rs {
		requests++
		bytes += r.Body
	}
	return requests, bytes
}
