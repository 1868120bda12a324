//go:build linux

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoal-cdn/shoal/deploy/nginx"
	"github.com/shoal-cdn/shoal/layout"
)

// netnsPrefix starts the name of every namespace the benchmark makes;
// the process ID follows, so a later run can tell a dead run's leftovers.
const netnsPrefix = "shoalnb-"

// netbedNet is the emulated network: a hub namespace holding a bridge, the
// origin's namespace and one per receiver, each joined to the bridge by a
// veth pair whose two ends carry the host's tc tbf shaping (upload on the
// host's end, download on the hub's).
type netbedNet struct {
	prefix   string
	hub      string
	origin   string
	recv     []string
	recvAddr []string
}

const netbedOriginAddr = "198.18.0.1"

// netbedAddr is receiver i's address: 198.18.1.1, 198.18.1.2, …
func netbedAddr(i int) string { return fmt.Sprintf("198.18.%d.%d", 1+i/250, 1+i%250) }

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeStaleNetns deletes namespaces a killed run left (its process is
// gone), and ends the processes still running in them.
func removeStaleNetns() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !strings.HasPrefix(name, netnsPrefix) {
			continue
		}
		pidS, _, _ := strings.Cut(strings.TrimPrefix(name, netnsPrefix), "-")
		pid, err := strconv.Atoi(pidS)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			// Its processes first: deleting a namespace does not end them.
			if pids, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
				for _, f := range strings.Fields(string(pids)) {
					if p, err := strconv.Atoi(f); err == nil {
						syscall.Kill(p, syscall.SIGKILL)
					}
				}
			}
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

// tbf shapes dev's egress in namespace ns to rate bytes/s (0: unshaped).
// The burst covers a GSO super-packet, so big segments are not dropped.
func tbf(ctx context.Context, ns, dev string, rate float64) error {
	if rate <= 0 {
		return nil
	}
	burst := max(int64(rate*0.005), 128<<10)
	return run(ctx, "ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", fmt.Sprintf("%dbit", int64(rate*8)), "burst", strconv.FormatInt(burst, 10), "latency", "100ms")
}

func newNetbedNet(ctx context.Context, n int, originUp, originDown, peerUp, peerDown float64) (_ *netbedNet, err error) {
	if n > 250*250 {
		return nil, fmt.Errorf("netbed: at most %d receivers", 250*250)
	}
	removeStaleNetns()
	nb := &netbedNet{prefix: fmt.Sprintf("%s%d-", netnsPrefix, os.Getpid())}
	nb.hub, nb.origin = nb.prefix+"hub", nb.prefix+"o"
	defer func() {
		if err != nil {
			nb.close()
		}
	}()
	if err := newHub(ctx, nb.hub); err != nil {
		return nb, err
	}
	attach := func(ns, port, addr string, up, down float64) error {
		return attachToHub(ctx, nb.hub, ns, port, addr+"/16", up, down)
	}
	if err := attach(nb.origin, "vo", netbedOriginAddr, originUp, originDown); err != nil {
		return nb, err
	}
	for i := range n {
		ns := fmt.Sprintf("%sr%d", nb.prefix, i)
		nb.recv = append(nb.recv, ns)
		nb.recvAddr = append(nb.recvAddr, netbedAddr(i))
		if err := attach(ns, fmt.Sprintf("v%d", i), netbedAddr(i), peerUp, peerDown); err != nil {
			return nb, err
		}
	}
	return nb, nil
}

// newHub makes namespace hub holding the bridge br0 that attachToHub joins
// other namespaces to.
func newHub(ctx context.Context, hub string) error {
	if err := run(ctx, "ip", "netns", "add", hub); err != nil {
		return err
	}
	for _, c := range [][]string{
		{"ip", "-n", hub, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", hub, "link", "set", "br0", "up"},
		{"ip", "-n", hub, "link", "set", "lo", "up"},
	} {
		if err := run(ctx, c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// attachToHub makes namespace ns and joins it to the hub's bridge br0 by a
// veth pair (port on the hub's side, eth0 in ns, with address addr, a CIDR),
// shaping ns's upload to up and download to down bytes/s (0: unshaped).
func attachToHub(ctx context.Context, hub, ns, port, addr string, up, down float64) error {
	if err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return err
	}
	for _, c := range [][]string{
		{"ip", "-n", hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "-n", hub, "link", "set", port, "master", "br0", "up"},
		{"ip", "-n", ns, "addr", "add", addr, "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
	} {
		if err := run(ctx, c[0], c[1:]...); err != nil {
			return err
		}
	}
	if err := tbf(ctx, ns, "eth0", up); err != nil {
		return err
	}
	return tbf(ctx, hub, port, down)
}

// close deletes every namespace (the veths and qdiscs go with them).
func (nb *netbedNet) close() {
	for _, ns := range append(slices.Clone(nb.recv), nb.origin, nb.hub) {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// txBytes is what dev in ns has sent.
func txBytes(ns, dev string) (int64, error) {
	tx, _, err := linkBytes(ns, dev)
	return tx, err
}

// linkBytes is what dev in ns has sent and received, by the interface's
// own counters (a GSO super-packet's headers counted once).
func linkBytes(ns, dev string) (tx, rx int64, err error) {
	out, err := exec.Command("ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("ip -n %s -s link show %s: %w", ns, dev, err)
	}
	var links []struct {
		Stats64 struct {
			Tx struct {
				Bytes int64 `json:"bytes"`
			} `json:"tx"`
			Rx struct {
				Bytes int64 `json:"bytes"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, 0, fmt.Errorf("ip -s -j link show %s in %s: unexpected output %q", dev, ns, out)
	}
	return links[0].Stats64.Tx.Bytes, links[0].Stats64.Rx.Bytes, nil
}

// qdiscBytes is what the root qdisc of dev in ns has sent: the wire bytes
// tbf shaped (every segment of a GSO packet with its own headers).
func qdiscBytes(ns, dev string) (int64, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "tc", "-s", "-j", "qdisc", "show", "dev", dev, "root").Output()
	if err != nil {
		return 0, fmt.Errorf("tc -s qdisc show dev %s in %s: %w", dev, ns, err)
	}
	return parseQdiscBytes(out)
}

// wireCounters reads every counter a NetbedWire is made of (PeerServed
// excepted): each receiver's shaped upload (its eth0) and download (its
// port on the hub), the origin's shaped upload and what its link received.
func (nb *netbedNet) wireCounters() (NetbedWire, error) {
	w := NetbedWire{PeerUp: make([]int64, len(nb.recv)), PeerDown: make([]int64, len(nb.recv))}
	var err error
	for i, ns := range nb.recv {
		if w.PeerUp[i], err = qdiscBytes(ns, "eth0"); err != nil {
			return w, err
		}
		if w.PeerDown[i], err = qdiscBytes(nb.hub, fmt.Sprintf("v%d", i)); err != nil {
			return w, err
		}
	}
	if w.OriginUp, err = qdiscBytes(nb.origin, "eth0"); err != nil {
		return w, err
	}
	_, w.OriginIn, err = linkBytes(nb.origin, "eth0")
	return w, err
}

// uploads reads the origin's and each receiver's shaped upload, the
// counters wireCounters reads as OriginUp and PeerUp, over netlink in
// process instead of a tc process per device: cheap enough for the
// progress lines to sample every few seconds without taking CPU from the
// receivers they measure.
func (nb *netbedNet) uploads() (origin int64, peers []int64, err error) {
	peers = make([]int64, len(nb.recv))
	for i, ns := range nb.recv {
		b, err := rootQdiscBytes(ns, "eth0")
		if err != nil {
			return 0, nil, err
		}
		peers[i] = b[0]
	}
	b, err := rootQdiscBytes(nb.origin, "eth0")
	if err != nil {
		return 0, nil, err
	}
	return b[0], peers, nil
}

// inNetns runs fn on an OS thread that has entered namespace ns: sockets
// fn creates belong to ns (their later I/O may run on any thread).
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked (and so discarded) when the goroutine
		// ends: it is never returned to the scheduler in another namespace.
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// nsClient is an HTTP client whose connections are made in namespace ns.
func nsClient(ns string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNetns(ns, func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

// proc is a process started in a namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  *tailLog
}

// tailLog keeps the last few KiB a process wrote, for error messages.
type tailLog struct {
	mu sync.Mutex
	b  []byte
}

func (l *tailLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if len(l.b) > 8<<10 {
		l.b = l.b[len(l.b)-8<<10:]
	}
	return len(p), nil
}

func (l *tailLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// startIn starts name args in namespace ns; lines (if not nil) gets every
// line of its stdout and stderr.
func startIn(ns, name string, lines func(string), args ...string) (*proc, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	p := &proc{name: name + " in " + ns, cmd: cmd, done: make(chan struct{}), log: &tailLog{}}
	pr, pw := io.Pipe()
	scanned := make(chan struct{})
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sc.Split(scanCROrLF) // console readouts end lines with \r
		for sc.Scan() {
			p.log.Write(append(sc.Bytes(), '\n'))
			if lines != nil {
				lines(sc.Text())
			}
		}
		io.Copy(io.Discard, pr)
		close(scanned)
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		<-scanned // done means every line was seen
		close(p.done)
	}()
	return p, nil
}

// scanCROrLF is bufio.ScanLines that also ends a line at a carriage
// return.
func scanCROrLF(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		if b == '\n' || b == '\r' {
			return i + 1, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// stop ends the process: SIGTERM, SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// runDir makes the directory of client's run k (caches, outputs); the
// caller removes it when the run is over.
func runDir(cfg NetbedConfig, client string, k int) (string, error) {
	dir := filepath.Join(cfg.Dir, fmt.Sprintf("%s-run%d", client, k))
	return dir, os.MkdirAll(dir, 0o755)
}

// stopAll stops the processes at once, each as stop does.
func stopAll(procs []*proc) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(10 * time.Second) }()
	}
	wg.Wait()
}

// waitHTTP polls url from namespace ns until it answers.
func waitHTTP(ctx context.Context, ns, url string, p *proc) error {
	c := nsClient(ns)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %s", p.name, p.log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s within 30s: %v", p.name, url, err)
		}
	}
}

// RunNetbed runs the benchmark (root, Linux, iproute2 and tc required).
func RunNetbed(ctx context.Context, cfg NetbedConfig) (*NetbedResult, error) {
	if cfg.Receivers <= 0 || cfg.Size <= 0 {
		return nil, fmt.Errorf("netbed: want at least one receiver and a positive size")
	}
	if cfg.Runs <= 0 {
		cfg.Runs = 1
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = 256 << 10
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if len(cfg.Clients) == 0 {
		cfg.Clients = []string{ClientShoal}
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string) {}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("netbed: network namespaces and tc need root")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("netbed: %s not found (Debian: apt-get install iproute2)", tool)
		}
	}
	for _, c := range cfg.Clients {
		switch c {
		case ClientShoal:
		case ClientAria2:
			for _, tool := range []string{"aria2c", "mktorrent"} {
				if _, err := exec.LookPath(tool); err != nil {
					return nil, fmt.Errorf("netbed: client aria2 needs %s (Debian: apt-get install aria2 mktorrent)", tool)
				}
			}
		default:
			return nil, fmt.Errorf("netbed: unknown client %q (want shoal or aria2)", c)
		}
	}
	if cfg.Shoal == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cfg.Shoal = exe
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "shoal-netbed-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	res := &NetbedResult{Config: cfg, TStar: LowerBound(cfg.Receivers, cfg.Size, cfg.OriginUp, cfg.PeerUp, cfg.PeerDown)}

	src := filepath.Join(cfg.Dir, "src", "content.bin")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		return nil, err
	}
	if err := writeRandom(src, cfg.Seed, cfg.Size); err != nil {
		return nil, err
	}
	cfg.Progress("network: " + fmt.Sprint(cfg.Receivers) + " receivers, origin and hub namespaces")
	nb, err := newNetbedNet(ctx, cfg.Receivers, cfg.OriginUp, 0, cfg.PeerUp, cfg.PeerDown)
	if err != nil {
		return nil, err
	}
	defer nb.close()

	for _, client := range cfg.Clients {
		var prep func(k int) (*NetbedRun, error)
		switch client {
		case ClientShoal:
			sh, err := prepareShoal(ctx, cfg, src)
			if err != nil {
				return nil, err
			}
			prep = func(k int) (*NetbedRun, error) { return sh.run(ctx, cfg, nb, k) }
		case ClientAria2:
			ar, err := prepareAria2(ctx, cfg, src)
			if err != nil {
				return nil, err
			}
			prep = func(k int) (*NetbedRun, error) { return ar.run(ctx, cfg, nb, k) }
		}
		for k := range cfg.Runs {
			cfg.Progress(fmt.Sprintf("%s run %d/%d", client, k+1, cfg.Runs))
			r, err := prep(k)
			if err != nil {
				return nil, fmt.Errorf("%s run %d: %w", client, k+1, err)
			}
			res.Runs = append(res.Runs, *r)
		}
	}
	return res, ctx.Err()
}

// receivers runs one process per receiver until every one reports done (or
// the run times out), and times their first bytes and completions.
type receivers struct {
	mu        sync.Mutex
	start     time.Time
	done      []time.Duration // 0: not yet
	first     []time.Duration
	remaining int
	all       chan struct{}
}

func newReceivers(n int) *receivers {
	return &receivers{done: make([]time.Duration, n), first: make([]time.Duration, n), remaining: n, all: make(chan struct{})}
}

func (rs *receivers) markFirst(i int) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.first[i] == 0 {
		rs.first[i] = time.Since(rs.start)
	}
}

func (rs *receivers) markDone(i int) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.done[i] != 0 {
		return
	}
	rs.done[i] = time.Since(rs.start)
	rs.remaining--
	if rs.remaining == 0 {
		close(rs.all)
	}
}

// result fills the run's times (sorted; receivers that did not finish are
// left out of Done).
func (rs *receivers) result(r *NetbedRun) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for i := range rs.done {
		if rs.done[i] > 0 {
			r.Done = append(r.Done, rs.done[i])
			r.Completed++
		}
		if rs.first[i] > 0 {
			r.FirstByte = append(r.FirstByte, rs.first[i])
		}
	}
	slices.Sort(r.Done)
	slices.Sort(r.FirstByte)
	r.Receivers = len(rs.done)
}

// utilisation returns a function that says, each time it is called, how
// busy the origin's and the receivers' shaped uploads were since the last
// call (wire Mbit/s, and the share of their rates).
func (nb *netbedNet) utilisation(cfg NetbedConfig) func() string {
	var lastOrigin int64
	var lastPeers []int64
	var lastAt time.Time
	return func() string {
		origin, peers, err := nb.uploads()
		if err != nil {
			return ""
		}
		now := time.Now()
		defer func() { lastOrigin, lastPeers, lastAt = origin, peers, now }()
		if lastAt.IsZero() {
			return ""
		}
		el := now.Sub(lastAt).Seconds()
		var up int64
		for i := range peers {
			up += peers[i] - lastPeers[i]
		}
		o := float64(origin-lastOrigin) / el
		u := float64(up) / el
		share := func(rate, capacity float64) string {
			if capacity <= 0 {
				return ""
			}
			return fmt.Sprintf(" (%.0f%%)", 100*rate/capacity)
		}
		// Measured rates are printed as they are: Mbit reads 0 as "unlimited".
		return fmt.Sprintf("; origin up %.1fMbit/s%s, receivers up %.1fMbit/s%s", o*8/1e6, share(o, cfg.OriginUp), u*8/1e6, share(u, cfg.PeerUp*float64(len(nb.recv))))
	}
}

// await waits for every receiver, the run's timeout or ctx; sample (if
// not nil) adds to each progress line.
func (rs *receivers) await(ctx context.Context, timeout time.Duration, progress func(string), sample func() string) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-rs.all:
			return
		case <-t.C:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
			extra := ""
			if sample != nil {
				extra = sample()
			}
			rs.mu.Lock()
			progress(fmt.Sprintf("  %s: %d/%d done%s", secs(time.Since(rs.start)), len(rs.done)-rs.remaining, len(rs.done), extra))
			rs.mu.Unlock()
		}
	}
}

// shoalSide is the published content and the key that signed it.
type shoalSide struct {
	layout, pub, id string
}

func prepareShoal(ctx context.Context, cfg NetbedConfig, src string) (*shoalSide, error) {
	key := filepath.Join(cfg.Dir, "publisher.pem")
	out, err := exec.CommandContext(ctx, cfg.Shoal, "keygen", "-o", key).Output()
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	s := &shoalSide{layout: filepath.Join(cfg.Dir, "www"), pub: strings.TrimSpace(string(out))}
	out, err = exec.CommandContext(ctx, cfg.Shoal, "publish", "--key", key, "--out", s.layout,
		"--chunk-size", strconv.FormatInt(cfg.ChunkSize, 10), "--name", "netbed", src).Output()
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return nil, errors.New("publish printed no content ID")
	}
	s.id = lines[len(lines)-1]
	return s, nil
}

func (s *shoalSide) run(ctx context.Context, cfg NetbedConfig, nb *netbedNet, k int) (*NetbedRun, error) {
	dir, err := runDir(cfg, "shoal", k)
	if err != nil {
		return nil, err
	}
	logs := dir + ".logs"
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, fmt.Errorf("receivers' logs: %w", err)
	}
	defer os.RemoveAll(dir)
	originURL := "http://" + netbedOriginAddr + ":8080"
	trackerURL := "http://" + netbedOriginAddr + ":7070"
	origin, originServed, err := s.startOrigin(ctx, cfg, nb, dir, originURL)
	if err != nil {
		return nil, err
	}
	defer origin.stop(10 * time.Second)
	// Every receiver is in one /24 of the testbed: no diversity cap, or
	// each would learn only a few of the others per announce.
	tracker, err := startIn(nb.origin, cfg.Shoal, nil, "tracker", "--listen", netbedOriginAddr+":7070", "--max-per-prefix", "0")
	if err != nil {
		return nil, err
	}
	defer tracker.stop(10 * time.Second)
	if err := waitHTTP(ctx, nb.origin, trackerURL+"/metrics", tracker); err != nil {
		return nil, err
	}
	served0, _ := originServed()
	tx0, err := txBytes(nb.origin, "eth0")
	if err != nil {
		return nil, err
	}
	w0, err := nb.wireCounters()
	if err != nil {
		return nil, err
	}
	served := make([]int64, len(nb.recv))
	var servedMu sync.Mutex // guards served
	for i := range served {
		served[i] = -1
	}
	rs := newReceivers(len(nb.recv))
	rs.start = time.Now()
	var procs []*proc
	defer func() { stopAll(procs) }()
	for i, ns := range nb.recv {
		args := []string{"get", "--tracker", trackerURL, "--origin", originURL, "--trust", s.pub,
			"--cache", filepath.Join(dir, fmt.Sprintf("cache%d", i)), "-o", filepath.Join(dir, fmt.Sprintf("out%d", i)),
			"--seed-for", "1h"}
		args = append(args, cfg.GetArgs...)
		args = append(args, s.id)
		// Each receiver's output, every line stamped with the time since
		// the run started, is kept next to the run's directory (which is
		// removed): shoal-run<k>.logs/get<i>.log under --dir.
		lf, err := os.Create(filepath.Join(logs, fmt.Sprintf("get%d.log", i)))
		if err != nil {
			return nil, fmt.Errorf("receiver %d log: %w", i, err)
		}
		defer lf.Close()
		p, err := startIn(ns, cfg.Shoal, func(line string) {
			fmt.Fprintf(lf, "%8.3f %s\n", time.Since(rs.start).Seconds(), line)
			if n, ok := parseUploaded(line); ok {
				servedMu.Lock()
				served[i] = n
				servedMu.Unlock()
				return
			}
			if !strings.HasPrefix(line, "progress ") {
				return
			}
			rs.markFirst(i)
			if strings.HasPrefix(line, "progress 100.0%") {
				rs.markDone(i)
			}
		}, args...)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	sample := nb.utilisation(cfg)
	sample()
	rs.await(ctx, cfg.Timeout, cfg.Progress, sample)
	r := &NetbedRun{Client: ClientShoal}
	rs.result(r)
	tx1, err := txBytes(nb.origin, "eth0")
	if err != nil {
		return nil, err
	}
	r.OriginEgress = tx1 - tx0
	w1, err := nb.wireCounters()
	if err != nil {
		return nil, err
	}
	if served1, err := originServed(); err == nil {
		r.OriginServed = served1 - served0
	}
	if r.Completed < len(nb.recv) {
		for i, p := range procs {
			select {
			case <-p.done:
				cfg.Progress(fmt.Sprintf("receiver %d exited early: %s", i, p.log))
			default:
			}
		}
	}
	// Every receiver prints what it uploaded when it stops.
	stopAll(procs)
	servedMu.Lock()
	r.Wire = w1.since(w0, served)
	servedMu.Unlock()
	return r, nil
}

// startOrigin starts cfg.OriginServer on the layout in the origin's
// namespace and waits until it serves the content's manifest. served reads
// what it has sent so far, by its own count.
func (s *shoalSide) startOrigin(ctx context.Context, cfg NetbedConfig, nb *netbedNet, dir, originURL string) (p *proc, served func() (int64, error), err error) {
	listen := netbedOriginAddr + ":8080"
	switch cfg.OriginServer {
	case OriginShoal:
		p, err = startIn(nb.origin, cfg.Shoal, nil, "origin", "--dir", s.layout, "--listen", listen)
		served = func() (int64, error) { return originServed(nb.origin, originURL) }
	case "", OriginNginx:
		bin, berr := nginx.Binary()
		if berr != nil {
			return nil, nil, fmt.Errorf("netbed: %w", berr)
		}
		ndir := filepath.Join(dir, "nginx")
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return nil, nil, err
		}
		root, aerr := filepath.Abs(s.layout)
		if aerr != nil {
			return nil, nil, aerr
		}
		conf := filepath.Join(ndir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(nginx.Config(root, listen, ndir, true)), 0o644); err != nil {
			return nil, nil, err
		}
		p, err = startIn(nb.origin, bin, nil, "-p", ndir, "-e", filepath.Join(ndir, "error.log"), "-c", conf)
		served = func() (int64, error) {
			rs, err := nginx.ReadSettledLog(filepath.Join(ndir, nginx.AccessLog), 300*time.Millisecond, 5*time.Second)
			_, n := nginx.Totals(rs)
			return n, err
		}
	default:
		return nil, nil, fmt.Errorf("netbed: origin server %q: want nginx or shoal", cfg.OriginServer)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := waitHTTP(ctx, nb.origin, originURL+"/"+layout.ManifestDir+"/"+s.id, p); err != nil {
		p.stop(10 * time.Second)
		return nil, nil, err
	}
	return p, served, nil
}

// originServed reads shoal_origin_response_bytes_total from the origin.
func originServed(ns, originURL string) (int64, error) {
	resp, err := nsClient(ns).Get(originURL + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "shoal_origin_response_bytes_total") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			total += v
		}
	}
	return int64(total), sc.Err()
}
