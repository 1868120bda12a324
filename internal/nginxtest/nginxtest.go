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
	"context"
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

	"github.com/shoal-cdn/shoal/deploy/nginx"
)

// startTimeout bounds how long Start waits for nginx to answer.
const startTimeout = 20 * time.Second

// probePath is asked until nginx answers (404: it is outside the layout).
const probePath = "/nginxtest-probe"

// Request is one request nginx logged.
type Request = nginx.Request

// Server is a running nginx.
type Server struct {
	// URL is http://127.0.0.1:port.
	URL string
	log string // the access log's path
}

// Start runs nginx serving root (an origin layout) and returns once it
// answers.
func Start(t testing.TB, root string) *Server {
	t.Helper()
	bin, err := nginx.Binary()
	if err != nil {
		t.Fatalf("the tests of nginx as an origin need a real one: %v", err)
	}
	var last error
	for range 3 { // the port picked may be taken before nginx binds it
		s, err := start(t, bin, root)
		if err == nil {
			return s
		}
		last = err
	}
	t.Fatalf("start nginx: %v", last)
	return nil
}

func start(t testing.TB, bin, root string) (*Server, error) {
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
	s := &Server{URL: "http://" + addr, log: filepath.Join(dir, nginx.AccessLog)}
	cf := filepath.Join(dir, "nginx.conf")
	// As root, workers would drop to nobody, who cannot read a test's
	// 0700 temporary directories.
	if err := os.WriteFile(cf, []byte(nginx.Config(abs, addr, dir, os.Geteuid() == 0)), 0o644); err != nil {
		return nil, err
	}
	var out strings.Builder
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", cf)
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so stopping it reaches the workers too; the
	// master is killed if the test binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // any worker left behind
	})
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get(s.URL + probePath)
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
	all, err := nginx.ReadLog(s.log)
	if err != nil {
		return nil, err
	}
	rs := all[:0]
	for _, r := range all {
		if r.Path != probePath {
			rs = append(rs, r)
		}
	}
	return rs, nil
}

// Settle waits until the access log has not grown for quiet (nginx logs a
// request just after answering it, so a test that reads the log right after
// its last response could miss that one), at most timeout, and returns the
// requests logged.
func (s *Server) Settle(quiet, timeout time.Duration) ([]Request, error) {
	if _, err := nginx.ReadSettledLog(s.log, quiet, timeout); err != nil {
		return nil, err
	}
	return s.Requests()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
