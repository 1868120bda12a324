// Package nginxtest starts a stock nginx for tests, serving an origin
// layout with the server block Shoal documents for operators
// (deploy/nginx/shoal-origin.conf), on a loopback port of its own, in a
// temporary directory, stopped when the test ends. It reads nginx's access
// log back, so a test can count what the origin sent without any help
// from Shoal's own origin.
//
// The server is Debian's nginx (apt-get install nginx-light; CI installs
// it). When it is missing the test fails and says so: a test that skipped
// would hide the failures it exists to catch.
package nginxtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long Start waits for nginx to answer.
const startTimeout = 20 * time.Second

// ConfPath is the documented server block, relative to the module root.
const ConfPath = "deploy/nginx/shoal-origin.conf"

// Server is a running nginx.
type Server struct {
	// URL is http://127.0.0.1:port.
	URL string
	dir string
	log string // the access log's path
}

// Request is one line of the access log.
type Request struct {
	Method   string
	Path     string
	Status   int
	Body     int64  // $body_bytes_sent: the body as sent (compressed if it was, chunked framing included)
	Encoding string // Content-Encoding of the answer, "" if none
	Range    string // the request's Range header, "" if none
}

// logFormat writes Request's fields, space-separated (the quoted ones may
// be empty: "-" then).
const logFormat = `$request_method $uri $status $body_bytes_sent "$sent_http_content_encoding" "$http_range"`

// Start runs nginx serving root (an origin layout) and returns once it
// answers.
func Start(t testing.TB, root string) *Server {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		// Debian puts it in /usr/sbin, which a non-root PATH may lack.
		if _, serr := os.Stat("/usr/sbin/nginx"); serr == nil {
			bin, err = "/usr/sbin/nginx", nil
		}
	}
	if err != nil {
		t.Fatalf("nginx not found: install it (apt-get install -y nginx-light); the tests of nginx as an origin need a real one: %v", err)
	}
	block, err := serverBlock()
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for range 3 { // the port picked may be taken before nginx binds it
		s, err := start(t, bin, block, root)
		if err == nil {
			return s
		}
		last = err
	}
	t.Fatalf("start nginx: %v", last)
	return nil
}

// serverBlock reads the documented server block from the module root.
func serverBlock() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(ConfPath)))
			if err != nil {
				return "", fmt.Errorf("nginx server block: %w", err)
			}
			return string(b), nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("nginx server block: no go.mod above the working directory")
		}
		dir = up
	}
}

func start(t testing.TB, bin, block, root string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{URL: "http://" + addr, dir: dir, log: filepath.Join(dir, "access.log")}
	block = strings.NewReplacer("@LISTEN@", addr, "@ROOT@", abs).Replace(block)
	user := ""
	if os.Geteuid() == 0 {
		// Workers would drop to nobody, who cannot read a test's 0700
		// temporary directories.
		user = "user root;\n"
	}
	conf := user + `daemon off;
worker_processes 1;
pid ` + filepath.Join(dir, "nginx.pid") + `;
error_log ` + filepath.Join(dir, "error.log") + ` warn;
events { worker_connections 512; }
http {
    log_format shoaltest '` + logFormat + `';
    access_log ` + s.log + ` shoaltest;
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
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	var out strings.Builder
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", cf)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan if the test binary dies
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := sync.OnceFunc(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // graceful: workers finish their requests
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get(s.URL + "/nginxtest-probe")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				break
			}
			err = fmt.Errorf("probe: %s", resp.Status)
		}
		select {
		case <-exited:
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx on %s exited: %s %s", addr, strings.TrimSpace(out.String()), errLog)
		case <-ctx.Done():
			stop()
			return nil, fmt.Errorf("nginx on %s did not answer within %v: %v", addr, startTimeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Cleanup(stop)
	return s, nil
}

// Requests returns every request logged so far, the start-up probes left
// out.
func (s *Server) Requests() ([]Request, error) {
	f, err := os.Open(s.log)
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
		r, err := parseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.log, err)
		}
		if r.Path == "/nginxtest-probe" {
			continue
		}
		rs = append(rs, r)
	}
	return rs, sc.Err()
}

// parseLine reads one line of logFormat.
func parseLine(line string) (Request, error) {
	var r Request
	head, quoted, ok := strings.Cut(line, ` "`)
	f := strings.Fields(head)
	if !ok || len(f) != 4 {
		return r, fmt.Errorf("access log line %q: want 4 fields and 2 quoted ones", line)
	}
	var err error
	r.Method, r.Path = f[0], f[1]
	if r.Status, err = strconv.Atoi(f[2]); err != nil {
		return r, fmt.Errorf("access log line %q: status: %w", line, err)
	}
	if r.Body, err = strconv.ParseInt(f[3], 10, 64); err != nil {
		return r, fmt.Errorf("access log line %q: bytes: %w", line, err)
	}
	enc, rng, ok := strings.Cut(quoted, `" "`)
	if !ok {
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

// Totals sums requests and body bytes of rs.
func Totals(rs []Request) (requests int, bytes int64) {
	for _, r := range rs {
		requests++
		bytes += r.Body
	}
	return requests, bytes
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Settle waits until the access log has not grown for quiet (nginx logs a
// request just after answering it, so a test that reads the log right after
// its last response could miss that one), at most timeout, and returns the
// requests logged.
func (s *Server) Settle(quiet, timeout time.Duration) ([]Request, error) {
	end := time.Now().Add(timeout)
	var last int64 = -1
	since := time.Now()
	for {
		var n int64
		if st, err := os.Stat(s.log); err == nil {
			n = st.Size()
		}
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return s.Requests()
		}
		if time.Now().After(end) {
			return nil, fmt.Errorf("nginx access log still growing after %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
