// Package redistest starts a real redis-server for tests: on a loopback
// port of its own, without persistence, in a temporary directory, killed
// when the test ends. Tests of the tracker's Redis store and the
// end-to-end tests of tracker replicas import it; nothing else may.
//
// The server is Debian's redis-server (apt-get install redis-server; CI
// installs it). When it is missing the test fails and says so: a store
// test that skipped would hide the failures it exists to catch.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long Start waits for the server to answer PING.
const startTimeout = 20 * time.Second

// Server is a running redis-server.
type Server struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	log  *bytes.Buffer
	kill func()
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Kill stops the server at once (SIGKILL) and waits for it; Start's cleanup
// does it too, so tests call it only to take the store away mid-test.
func (s *Server) Kill() { s.kill() }

// Start runs a redis-server for t and returns once it answers PING.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH: install it (apt-get install -y redis-server); the Redis store tests need a real one: %v", err)
	}
	var last error
	for range 3 { // the port picked may be taken before the server binds it
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		last = err
	}
	t.Fatalf("start redis-server: %v", last)
	return nil
}

// Restart starts an empty redis-server on the address of s, which Kill
// stopped: the store came back, with nothing in it.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH: %v", err)
	}
	_, p, _ := net.SplitHostPort(s.Addr)
	port, _ := strconv.Atoi(p)
	n, err := startOn(t, bin, port)
	if err != nil {
		t.Fatalf("restart redis-server on %s: %v", s.Addr, err)
	}
	s.log, s.kill = n.log, n.kill
}

func start(t testing.TB, bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return startOn(t, bin, port)
}

func startOn(t testing.TB, bin string, port int) (*Server, error) {
	dir := t.TempDir()
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: &bytes.Buffer{}}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "yes", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan if the test binary dies
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := sync.OnceFunc(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	})
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		if err := ping(ctx, s.Addr); err == nil {
			break
		} else if ctx.Err() != nil {
			stop()
			return nil, fmt.Errorf("redis-server on %s did not answer PING within %v: %v; its output: %s", s.Addr, startTimeout, err, s.log)
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("redis-server on %s exited: %s", s.Addr, strings.TrimSpace(s.log.String()))
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.kill = stop
	t.Cleanup(stop)
	return s, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ping sends PING in the inline protocol and wants +PONG.
func ping(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
