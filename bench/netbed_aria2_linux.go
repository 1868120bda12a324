//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// The BitTorrent side of the netbed: one aria2 seed in the origin's
// namespace (behind the origin's link, as the origin is for Shoal) and one
// aria2 receiver per receiver namespace, finding each other through a
// minimal HTTP tracker (BEP 3 announce, BEP 23 compact peer lists) served
// in the origin's namespace.

const btTrackerPort = 6969

// aria2Side is the torrent of the content.
type aria2Side struct {
	torrent, src, srcDir string
}

func prepareAria2(ctx context.Context, cfg NetbedConfig, src string) (*aria2Side, error) {
	a := &aria2Side{torrent: filepath.Join(cfg.Dir, "content.torrent"), src: src, srcDir: filepath.Dir(src)}
	os.Remove(a.torrent)
	piece := bits.Len64(uint64(cfg.ChunkSize)) - 1
	announce := fmt.Sprintf("http://%s:%d/announce", netbedOriginAddr, btTrackerPort)
	if err := run(ctx, "mktorrent", "-a", announce, "-l", strconv.Itoa(piece), "-o", a.torrent, src); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *aria2Side) run(ctx context.Context, cfg NetbedConfig, nb *netbedNet, k int) (*NetbedRun, error) {
	dir, err := runDir(cfg, "aria2", k)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tr := newBTTracker()
	var ln net.Listener
	if err := inNetns(nb.origin, func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf("%s:%d", netbedOriginAddr, btTrackerPort))
		return err
	}); err != nil {
		return nil, fmt.Errorf("bittorrent tracker: %w", err)
	}
	srv := &http.Server{Handler: tr, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	common := []string{"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--seed-ratio=0.0",
		"--file-allocation=none", "--summary-interval=0", "--console-log-level=warn", "--check-certificate=false",
		"--listen-port=6881", "--bt-tracker-interval=" + strconv.Itoa(btInterval)}
	seed, err := startIn(nb.origin, "aria2c", nil, append(common, "--dir="+a.srcDir, "--bt-seed-unverified=true", "--check-integrity=false", a.torrent)...)
	if err != nil {
		return nil, err
	}
	defer seed.stop(10 * time.Second)
	// The seed is announced before the receivers start.
	deadline := time.Now().Add(30 * time.Second)
	for tr.count() == 0 {
		select {
		case <-seed.done:
			return nil, fmt.Errorf("aria2 seed exited: %s", seed.log)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("aria2 seed did not announce within 30s: %s", seed.log)
		}
	}
	tx0, err := txBytes(nb.origin, "eth0")
	if err != nil {
		return nil, err
	}
	rs := newReceivers(len(nb.recv))
	rs.start = time.Now()
	var procs []*proc
	defer func() { stopAll(procs) }()
	// aria2's console is block-buffered when piped, so completion comes
	// from its hook: it runs the moment the last piece is verified and
	// leaves a marker beside the download.
	hook := filepath.Join(dir, "done.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\ntouch \"$3.done\"\n"), 0o755); err != nil {
		return nil, err
	}
	markers := make([]string, len(nb.recv))
	for i, ns := range nb.recv {
		out := filepath.Join(dir, fmt.Sprintf("out%d", i))
		markers[i] = filepath.Join(out, filepath.Base(a.src)+".done")
		p, err := startIn(ns, "aria2c", nil, append(common, "--dir="+out, "--on-bt-download-complete="+hook, a.torrent)...)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	pollCtx, stopPoll := context.WithCancel(ctx)
	go func() {
		for {
			for i, m := range markers {
				if _, err := os.Stat(m); err == nil {
					rs.markDone(i)
				}
			}
			select {
			case <-pollCtx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	sample := nb.utilisation(cfg)
	sample()
	rs.await(ctx, cfg.Timeout, cfg.Progress, sample)
	stopPoll()
	r := &NetbedRun{Client: ClientAria2}
	rs.result(r)
	r.FirstByte = nil // aria2 does not report it
	tx1, err := txBytes(nb.origin, "eth0")
	if err != nil {
		return nil, err
	}
	r.OriginEgress = tx1 - tx0
	if r.Completed < len(nb.recv) {
		for i, p := range procs {
			cfg.Progress(fmt.Sprintf("aria2 receiver %d did not finish; its last output: %s", i, p.log))
		}
	}
	if r.Completed == 0 && len(procs) > 0 {
		return r, errors.New("no aria2 receiver finished: " + procs[0].log.String())
	}
	return r, nil
}

// btInterval is the re-announce interval the tracker asks for, in seconds.
const btInterval = 30

// btTracker is a minimal BitTorrent HTTP tracker: it remembers who
// announced each info-hash and answers with the others, compact.
type btTracker struct {
	mu    sync.Mutex
	peers map[string]map[string]bool // info-hash → "ip:port"
}

func newBTTracker() *btTracker { return &btTracker{peers: map[string]map[string]bool{}} }

func (t *btTracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, ps := range t.peers {
		n += len(ps)
	}
	return n
}

func (t *btTracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ih := q.Get("info_hash")
	port, err := strconv.Atoi(q.Get("port"))
	host, _, herr := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host).To4()
	if r.URL.Path != "/announce" || len(ih) != 20 || err != nil || port <= 0 || port > 65535 || herr != nil || ip == nil {
		w.Write([]byte("d14:failure reason11:bad requeste"))
		return
	}
	self := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	t.mu.Lock()
	ps := t.peers[ih]
	if ps == nil {
		ps = map[string]bool{}
		t.peers[ih] = ps
	}
	if q.Get("event") == "stopped" {
		delete(ps, self)
	} else {
		ps[self] = true
	}
	var compact []byte
	for p := range ps {
		if p == self || len(compact) >= 50*6 {
			continue
		}
		h, pt, _ := net.SplitHostPort(p)
		n, _ := strconv.Atoi(pt)
		compact = append(compact, net.ParseIP(h).To4()...)
		compact = append(compact, byte(n>>8), byte(n))
	}
	t.mu.Unlock()
	fmt.Fprintf(w, "d8:intervali%de5:peers%d:%se", btInterval, len(compact), compact)
}
