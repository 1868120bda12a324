package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/discovery"
	"github.com/shoal-cdn/shoal/manifest"
	"github.com/shoal-cdn/shoal/token"
	"github.com/shoal-cdn/shoal/tracker"
)

// Defaults of `shoal bench tracker`.
const (
	DefaultLoadPeers     = 10_000
	DefaultLoadSwarms    = 1_000
	DefaultLoadConns     = 32
	DefaultLoadDuration  = 5 * time.Second
	DefaultLoadAnnounces = 200_000
	DefaultLoadSession   = 12 // mean announces of one peer session, started to stopped
	// The in-process targets.
	TargetMemory       = "memory"        // in-memory tracker, checks off: unsigned, no token, no rate limits
	TargetMemoryChecks = "memory+checks" // in-memory tracker, signatures, session tickets, tokens (cached) and rate limits on
)

// TrackerLoadConfig configures RunTrackerLoad.
type TrackerLoadConfig struct {
	// Targets are run one after the other, each with a workload of its own
	// (fresh peer identities and swarms, so one target's announces are no
	// replays at the next): TargetMemory, TargetMemoryChecks, TargetFloor
	// (no tracker: the machine's and the generator's own cost), SpawnTarget
	// (child `shoal tracker` processes, say on one Redis), or the base URLs
	// of running trackers on this machine's loopback, several joined by '|'
	// for replicas the connections are spread over.
	Targets []string
	// Peers announce concurrently (10,000), each in one of Swarms swarms
	// (1,000) drawn with a Zipf popularity (exponent ZipfS, 1.1): a few
	// swarms hold most peers, most hold a few.
	Peers, Swarms int
	ZipfS         float64
	// Session is the mean number of announces of one peer session:
	// started, re-announces, completed half-way, seeding re-announces,
	// stopped; then a new identity takes the slot (12).
	Session int
	// Conns is the number of keep-alive connections, each with one request
	// in flight (32): the generator never queues, so latency is the
	// tracker's.
	Conns int
	// Duration (5 s) and Announces (200,000) bound each target's run,
	// whichever ends first. Announces are signed before the clock starts;
	// a peer whose first announce brought a session ticket MACs its later
	// ones with it during the run, as a real peer would (about 1 µs each).
	Duration  time.Duration
	Announces int
	// Cold starts the timed run with empty swarms, so it opens with every
	// peer's first ("started", signed) announce at once: a flash crowd.
	// Otherwise (the default) those first announces are sent before the
	// clock starts, and the timed run is a tracker's steady state: swarms
	// populated, one announce in about Session a session's first.
	Cold bool
	Seed uint64
	// Exe is the shoal binary that spawned targets ("shoal:N:ARGS") run as
	// `shoal tracker`; `shoal bench tracker` sets it to itself.
	Exe string
	// Progress, if set, receives a line per phase.
	Progress func(string)
}

func (c *TrackerLoadConfig) withDefaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Peers, DefaultLoadPeers)
	def(&c.Swarms, DefaultLoadSwarms)
	def(&c.Conns, DefaultLoadConns)
	def(&c.Announces, DefaultLoadAnnounces)
	def(&c.Session, DefaultLoadSession)
	if c.Duration == 0 {
		c.Duration = DefaultLoadDuration
	}
	if c.ZipfS == 0 {
		c.ZipfS = 1.1
	}
	if len(c.Targets) == 0 {
		c.Targets = []string{TargetMemory, TargetMemoryChecks}
	}
	switch {
	case c.Peers < 1 || c.Swarms < 1 || c.Conns < 1 || c.Announces < 1 || c.Session < 3:
		return fmt.Errorf("%w: peers, swarms, conns and announces must be positive and session at least 3 (started, completed, stopped)", ErrConfig)
	case c.Duration < 0 || c.Duration > 10*time.Minute:
		return fmt.Errorf("%w: duration %v: want up to 10m", ErrConfig, c.Duration)
	case !(c.ZipfS > 1):
		return fmt.Errorf("%w: zipf exponent %v: want more than 1", ErrConfig, c.ZipfS)
	case c.Announces > 5_000_000:
		return fmt.Errorf("%w: %d announces: at most 5,000,000 (each is signed and held in memory before the run)", ErrConfig, c.Announces)
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	for _, t := range c.Targets {
		if _, err := parseTarget(t); err != nil {
			return err
		}
	}
	return nil
}

// loadTarget is one parsed target.
type loadTarget struct {
	name    string
	inProc  bool
	checks  bool     // in-process: signatures, tokens and rate limits on
	floor   bool     // in-process: TargetFloor, no tracker
	hosts   []string // host:port of each replica (external)
	spawn   int      // child `shoal tracker` processes to start
	args    []string // their extra flags
	signed  bool
	tokened bool
}

// SpawnTarget names n child `shoal tracker` processes started with args
// (say "--redis", URL) on loopback, with signatures, tokens (the bench's
// own issuer key, passed with --trust) and the default rate limits on.
func SpawnTarget(n int, args ...string) string {
	return "shoal:" + strconv.Itoa(n) + ":" + strings.Join(args, " ")
}

func parseTarget(t string) (loadTarget, error) {
	switch t {
	case TargetMemory:
		return loadTarget{name: t, inProc: true}, nil
	case TargetMemoryChecks:
		return loadTarget{name: t, inProc: true, checks: true, signed: true, tokened: true}, nil
	case TargetFloor:
		return loadTarget{name: t, floor: true, signed: true}, nil
	}
	if rest, ok := strings.CutPrefix(t, "shoal:"); ok {
		ns, args, _ := strings.Cut(rest, ":")
		n, err := strconv.Atoi(ns)
		if err != nil || n < 1 || n > 8 {
			return loadTarget{}, fmt.Errorf("%w: target %q: want shoal:N:FLAGS with N from 1 to 8 replicas", ErrConfig, t)
		}
		return loadTarget{name: t, spawn: n, args: strings.Fields(args), signed: true, tokened: true}, nil
	}
	lt := loadTarget{name: t, signed: true}
	for _, u := range strings.Split(t, "|") {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "http" || pu.Host == "" || (pu.Path != "" && pu.Path != "/") {
			return lt, fmt.Errorf("%w: target %q: want %s, %s, %s or tracker base URLs (http://127.0.0.1:7070, replicas joined by '|')", ErrConfig, t, TargetMemory, TargetMemoryChecks, TargetFloor)
		}
		host, _, err := net.SplitHostPort(pu.Host)
		if err != nil {
			return lt, fmt.Errorf("%w: target %q: %v", ErrConfig, u, err)
		}
		if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
			return lt, fmt.Errorf("%w: target %q: the load generator sends only to loopback addresses (127.0.0.0/8, ::1)", ErrConfig, u)
		}
		lt.hosts = append(lt.hosts, pu.Host)
	}
	return lt, nil
}

// LoadResult is one target's figures.
type LoadResult struct {
	Target    string
	Sent      int           // requests answered
	OK        int           // 200
	Refused   int           // 429 or 503, with Retry-After
	Failed    int           // any other status, or a broken connection
	MACed     int           // sent with a session ticket's MAC instead of a signature
	Elapsed   time.Duration // from the first request to the last answer
	P50, P99  time.Duration // of every answered request
	Max       time.Duration
	FirstFail string // the first failure's text, if any
	// Warm first announces were sent before the clock started (WarmOK of
	// them answered 200); none with TrackerLoadConfig.Cold.
	Warm, WarmOK int
	// CPU is the process's CPU time (user and system) over the run: for an
	// in-process target, tracker and generator together. Per announce it
	// says what the machine would do alone, however loaded it was.
	CPU time.Duration
}

// CPUPerAnnounce is CPU over the requests answered.
func (r LoadResult) CPUPerAnnounce() time.Duration {
	if r.Sent == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Sent)
}

// Rate is the announces answered 200 per second.
func (r LoadResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// RunTrackerLoad runs the workload against each target in turn and
// returns their figures, in order.
func RunTrackerLoad(ctx context.Context, cfg TrackerLoadConfig) ([]LoadResult, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	var out []LoadResult
	for i, t := range cfg.Targets {
		lt, _ := parseTarget(t)
		res, err := runTarget(ctx, cfg, lt, cfg.Seed*1000+uint64(i))
		if err != nil {
			return out, fmt.Errorf("bench tracker: target %s: %w", t, err)
		}
		out = append(out, res)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

func runTarget(ctx context.Context, cfg TrackerLoadConfig, lt loadTarget, seed uint64) (LoadResult, error) {
	res := LoadResult{Target: lt.name}
	var issuer ed25519.PrivateKey
	if lt.tokened {
		var s [32]byte
		binary.LittleEndian.PutUint64(s[:], seed^0x70c)
		issuer = ed25519.NewKeyFromSeed(s[:])
	}
	hosts := lt.hosts
	var children []*child
	if lt.spawn > 0 {
		defer func() {
			for _, c := range children {
				c.stop()
			}
		}()
		for i := range lt.spawn {
			c, err := spawnTracker(ctx, cfg.Exe, manifest.PublicOf(issuer).String(), lt.args)
			if err != nil {
				return res, fmt.Errorf("replica %d: %w", i+1, err)
			}
			children = append(children, c)
			hosts = append(hosts, c.addr)
		}
	}
	if lt.inProc {
		tcfg := tracker.Config{Logger: slog.New(slog.DiscardHandler), TrustForwarded: true,
			AllowUnsigned: true, RatePerIP: -1, RatePerPrefix: -1, MaxPeersTotal: -1, MaxSwarms: -1, MaxTenantSwarms: -1}
		if lt.checks {
			tcfg.AllowUnsigned, tcfg.RatePerIP, tcfg.RatePerPrefix = false, 0, 0 // the defaults
			v := token.NewVerifier([]manifest.PublicKey{manifest.PublicOf(issuer)}, nil).WithCache(tracker.DefaultTokenCache)
			tcfg.Authorize = tracker.TokenAuthorizer(v)
			tcfg.Regrant = tracker.TokenRegrant(v)
			tcfg.SessionTTL = tracker.DefaultSessionTTL // as the binary's
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return res, err
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- tracker.New(tcfg).Serve(sctx, ln) }()
		defer func() { stop(); <-done }()
		hosts = []string{ln.Addr().String()}
	}

	if lt.floor {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return res, err
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- serveFloor(sctx, ln) }()
		defer func() { stop(); <-done }()
		hosts = []string{ln.Addr().String()}
	}

	warm := 0 // the first announces, one per peer, sent before the clock starts
	if !cfg.Cold {
		warm = cfg.Peers
	}
	cfg.Progress(fmt.Sprintf("%s: signing %d announces of %d peers in %d swarms…", lt.name, warm+cfg.Announces, cfg.Peers, cfg.Swarms))
	reqs, err := buildWorkload(cfg, lt, seed, issuer, hosts[0], warm+cfg.Announces)
	if err != nil {
		return res, err
	}

	// tickets[id] is the session ticket identity id got with its first
	// announce; written before that announce is marked answered, read
	// after, so its next announce sees it.
	tickets := make([]atomic.Pointer[ticket], idents(reqs))
	done := make([]atomic.Bool, len(reqs)) // answered (or given up): the peer's next may go
	if warm > 0 {
		cfg.Progress(fmt.Sprintf("%s: warming up: %d first announces, not timed…", lt.name, warm))
		w := drive(ctx, cfg, lt, hosts, reqs[:warm], 0, tickets, done, time.Minute)
		res.Warm, res.WarmOK = w.Sent, w.OK
		// A first announce the warm-up did not get to (it ran out of time)
		// must not hold its peer's next one for the whole timed run.
		for i := range warm {
			done[i].Store(true)
		}
		if w.OK < warm && res.FirstFail == "" {
			res.FirstFail = fmt.Sprintf("warm-up: %d of %d first announces answered 200 (%d refused, %d failed: %s)", w.OK, warm, w.Refused, w.Failed, w.FirstFail)
		}
	}
	cfg.Progress(fmt.Sprintf("%s: announcing over %d connections for at most %v…", lt.name, cfg.Conns, cfg.Duration))
	start, cpu0 := time.Now(), cpuTime(children)
	r := drive(ctx, cfg, lt, hosts, reqs, warm, tickets, done, cfg.Duration)
	r.Target, r.Warm, r.WarmOK = res.Target, res.Warm, res.WarmOK
	if r.FirstFail == "" {
		r.FirstFail = res.FirstFail
	}
	r.Elapsed = time.Since(start)
	r.CPU = cpuTime(children) - cpu0
	return r, nil
}

// drive sends reqs[from:] over cfg.Conns keep-alive connections spread
// over hosts, for at most d, and returns the counts and latencies of
// those answered. A peer's announce waits for its previous one (done).
func drive(ctx context.Context, cfg TrackerLoadConfig, lt loadTarget, hosts []string, reqs []loadReq, from int,
	tickets []atomic.Pointer[ticket], done []atomic.Bool, d time.Duration) LoadResult {
	var (
		res     LoadResult
		next    atomic.Int64
		mu      sync.Mutex // guards res's counts and lat
		lat     = make([]time.Duration, 0, len(reqs)-from)
		wg      sync.WaitGroup
		rctx, c = context.WithTimeout(ctx, d)
	)
	defer c()
	next.Store(int64(from))
	for w := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := hosts[w%len(hosts)] // replicas: the connections spread over them
			var conn net.Conn
			var br *bufio.Reader
			mine := make([]time.Duration, 0, (len(reqs)-from)/cfg.Conns+1)
			var buf []byte         // a MACed request, built in the timed loop
			var deadline time.Time // conn's deadline was last set for then
			var ok, refused, failed, maced int
			var fail string
			defer func() {
				if conn != nil {
					conn.Close()
				}
				mu.Lock()
				lat = append(lat, mine...)
				res.OK += ok
				res.Refused += refused
				res.Failed += failed
				res.MACed += maced
				if res.FirstFail == "" {
					res.FirstFail = fail
				}
				mu.Unlock()
			}()
			for rctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) {
					return
				}
				// A peer never has two announces in flight: its next one
				// waits for the previous answer, as a real peer's would.
				for p := reqs[i].prev; p >= 0 && !done[p].Load() && rctx.Err() == nil; {
					runtime.Gosched()
				}
				mark := func() { done[i].Store(true) }
				if conn == nil {
					d := net.Dialer{Timeout: 5 * time.Second}
					c, err := d.DialContext(rctx, "tcp", host)
					if err != nil {
						failed++
						fail = err.Error()
						mark()
						continue
					}
					conn = c
					br = bufio.NewReaderSize(conn, 16<<10)
					deadline = time.Time{}
				}
				q := &reqs[i]
				t0 := time.Now()
				raw := q.raw
				// A ticket without a grant stands for no token: a tokened
				// announce then goes signed (the template has no token).
				if tk := tickets[q.ident].Load(); tk != nil && q.tmpl != nil && (tk.Grant != nil || !lt.tokened) {
					buf = q.maced(buf[:0], tk)
					raw = buf
					maced++
				}
				// A deadline per request, but the timer moved at most once
				// a second: the generator shares the tracker's cores.
				if t0.After(deadline) {
					deadline = t0.Add(time.Second)
					_ = conn.SetDeadline(deadline.Add(30 * time.Second))
				}
				keep := q.first && lt.signed // only a verified signature brings a ticket
				status, body, err := roundTrip(conn, br, raw, keep)
				d := time.Since(t0)
				if status == 200 && keep {
					if tk := sessionOf(body); tk != nil {
						tickets[q.ident].Store(tk)
					}
				}
				mark()
				switch {
				case err != nil:
					failed++
					fail = err.Error()
					conn.Close()
					conn = nil
					continue
				case status == 200:
					ok++
				case status == 429 || status == 503:
					refused++
				default:
					failed++
					fail = "HTTP " + strconv.Itoa(status)
				}
				mine = append(mine, d)
			}
		}()
	}
	wg.Wait()
	res.Sent = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50, res.P99, res.Max = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)], lat[len(lat)-1]
	}
	return res
}

// loadReq is one announce of the workload.
type loadReq struct {
	raw   []byte // the whole HTTP request, signed
	prev  int    // the same peer's previous announce; -1: none
	ident int    // the peer identity's number
	first bool   // the identity's first announce: its answer may bring a ticket
	// For a later announce of a signed workload, what maced needs to send it
	// with a ticket instead: the HTTP head up to Content-Length's value, the
	// JSON body without sig, token and its closing brace, and the signing
	// bytes without the token (a ticket's grant stands for it).
	head, tmpl, sb []byte
}

// maced appends q as an HTTP request authenticated with ticket tk: the MAC
// is the peer's own cost, made here in the timed loop as a peer would.
func (q *loadReq) maced(b []byte, tk *ticket) []byte {
	mac := tk.mk.Sum(q.sb)
	var tail [64]byte
	t := base64.StdEncoding.AppendEncode(tail[:0], mac[:])
	t = append(t, `"}`...)
	b = append(b, q.head...)
	b = strconv.AppendInt(b, int64(len(q.tmpl)+len(tk.tail)+len(t)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, q.tmpl...)
	b = append(b, tk.tail...)
	return append(b, t...)
}

// idents is the number of peer identities in reqs.
func idents(reqs []loadReq) int {
	n := 0
	for i := range reqs {
		n = max(n, reqs[i].ident+1)
	}
	return n
}

// rawRequest is one announce as an HTTP/1.1 request, encoded before the
// run so the generator's cost per request is a write and a read.
func rawRequest(host, xff string, body []byte) []byte {
	b := requestHead(make([]byte, 0, 160+len(body)), host, xff)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// requestHead appends an announce's HTTP head up to Content-Length's value.
func requestHead(b []byte, host, xff string) []byte {
	b = append(b, "POST "+discovery.AnnouncePath+" HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nContent-Type: application/json\r\nX-Forwarded-For: "...)
	b = append(b, xff...)
	return append(b, "\r\nContent-Length: "...)
}

// loadPeer is one slot of the workload: a peer identity in one swarm,
// somewhere in its session.
type loadPeer struct {
	key    crypto.PrivKey
	id     string
	swarm  int
	ip     string
	n, len int // announces sent this session, and the session's length
	lastTS int64
	tok    string
	last   int // index of its latest announce in the workload; -1: none
	ident  int // the identity's number
}

// buildWorkload makes cfg.Announces announce requests: the peers take
// turns in a random order each round (a round is one announce interval,
// compressed), each through its session, a new identity taking over a slot
// whose session ended. Signing, the peers' own cost, is spread over the
// cores here, before the clock starts.
func buildWorkload(cfg TrackerLoadConfig, lt loadTarget, seed uint64, issuer ed25519.PrivateKey, host string, total int) ([]loadReq, error) {
	rng := rand.New(rand.NewPCG(seed, 0x10ad))
	zipf := rand.NewZipf(rng, cfg.ZipfS, 1, uint64(cfg.Swarms-1))
	swarms := make([]core.ContentID, cfg.Swarms)
	for i := range swarms {
		swarms[i] = core.ContentID(core.SumSHA256([]byte(fmt.Sprintf("bench tracker %d swarm %d", seed, i))))
	}
	// Timestamps spread over a minute starting 45 s from now, strictly
	// increasing per peer: within the tracker's clock skew (2 min) of the
	// time they are sent when signing them all and the run take up to
	// 2 min 45 s together (signing 400,000 announces on two busy cores
	// takes over a minute; with timestamps before now the first were stale
	// by the time the clock started).
	now := time.Now()
	base, span := now.Add(45*time.Second).UnixMilli(), int64(time.Minute/time.Millisecond)
	identities := 0
	newIdentity := func(p *loadPeer, slot int) {
		identities++
		var s [32]byte
		binary.LittleEndian.PutUint64(s[:], seed)
		binary.LittleEndian.PutUint64(s[8:], uint64(identities))
		k, _, _ := crypto.GenerateEd25519Key(rand.NewChaCha8(s))
		id, _ := peer.IDFromPrivateKey(k)
		// 198.18.0.0/15 as seen through X-Forwarded-For: each peer its own
		// address, about 20 per /24, so per-IP and per-network limits and
		// the diversity cap see a realistic spread. Only text: every byte
		// goes to loopback.
		ip := fmt.Sprintf("198.%d.%d.%d", 18+slot%2, (slot/2)%256, 1+(slot/512)%250)
		*p = loadPeer{key: k, id: id.String(), swarm: int(zipf.Uint64()), ip: ip, len: 3 + rng.IntN(2*(cfg.Session-3)+1), last: -1, ident: identities - 1}
		if lt.tokened {
			p.tok, _ = token.Issue(issuer, token.Claims{Tenant: "bench", Scope: token.ContentScope(swarms[p.swarm]),
				Peer: p.id, NotBefore: now.Add(-time.Hour), Expiry: now.Add(time.Hour)})
		}
	}
	peers := make([]loadPeer, cfg.Peers)
	for i := range peers {
		newIdentity(&peers[i], i)
		if !cfg.Cold {
			// Near a steady state: the sessions the warm-up opens last a
			// random 2 to Session announces, so they end, and new peers take
			// their slots, at about the steady rate from the start of the
			// timed run (each still starts as a leecher).
			peers[i].len = 2 + rng.IntN(peers[i].len-1)
		}
	}
	type job struct {
		p     *loadPeer // identity as of this announce (copied key and id)
		req   discovery.AnnounceRequest
		prev  int // the same identity's previous announce; -1: none
		first bool
	}
	jobs := make([]job, 0, total)
	order := rng.Perm(cfg.Peers)
	for len(jobs) < total {
		for _, slot := range order {
			if len(jobs) == total {
				break
			}
			p := &peers[slot]
			if p.n == p.len { // session over: a new peer takes the slot
				newIdentity(p, slot)
			}
			const size = 64 << 20
			r := discovery.AnnounceRequest{Content: swarms[p.swarm], Peer: p.id, Token: p.tok,
				Addrs: []string{"/ip4/" + p.ip + "/tcp/4001", "/ip4/" + p.ip + "/udp/4001/quic-v1"}, Region: "r" + strconv.Itoa(slot%4)}
			half := p.len / 2
			switch {
			case p.n == 0:
				r.Event = discovery.EventStarted
			case p.n == p.len-1:
				r.Event = discovery.EventStopped
			case p.n == half:
				r.Event = discovery.EventCompleted
			}
			if p.n < half {
				r.Left = size - int64(p.n)*size/int64(half+1)
			}
			r.Downloaded = size - r.Left
			r.Uploaded = int64(p.n) * size / 8
			ts := max(base+int64(len(jobs))*span/int64(total), p.lastTS+1)
			r.TS, p.lastTS = ts, ts
			p.n++
			jobs = append(jobs, job{p: &loadPeer{key: p.key, id: p.id, ip: p.ip, ident: p.ident}, req: r, prev: p.last, first: p.n == 1})
			p.last = len(jobs) - 1
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	out := make([]loadReq, len(jobs))
	var wg sync.WaitGroup
	var failed atomic.Value
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(jobs); i += workers {
				j := &jobs[i]
				q := loadReq{prev: j.prev, ident: j.p.ident, first: j.first}
				if lt.signed {
					if !j.first { // may go with a ticket instead of sig
						m := j.req
						m.Token = "" // a ticket's grant stands for it
						tmpl, err := json.Marshal(m)
						if err != nil {
							failed.Store(err)
							return
						}
						q.tmpl = tmpl[:len(tmpl)-1] // without '}'
						q.sb = m.SigningBytes()
						q.head = requestHead(nil, host, j.p.ip)
					}
					if err := j.req.Sign(j.p.key, time.UnixMilli(j.req.TS)); err != nil {
						failed.Store(err)
						return
					}
				} else {
					j.req.TS = 0
				}
				b, err := json.Marshal(j.req)
				if err != nil {
					failed.Store(err)
					return
				}
				q.raw = rawRequest(host, j.p.ip, b)
				out[i] = q
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return nil, err
	}
	return out, nil
}

// sessionOf returns the session ticket in an announce answer, nil when
// it has none. It decodes only the "session" object, not the peers before
// it: the generator's cost is on the tracker's cores. Inside a JSON
// string every quote is escaped, so `"session":` is only ever a key, and
// the peers before the ticket have no such key: the first is the answer's
// own (or, with no ticket, one inside a policy, which does not decode as
// one below).
func sessionOf(body []byte) *ticket {
	const key = `"session":`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return nil
	}
	var tk ticket
	rest := body[i+len(key):]
	s, ok := plainSession(rest)
	if !ok { // another tracker's spelling: the general decoder
		if json.NewDecoder(bytes.NewReader(rest)).Decode(&s) != nil {
			return nil
		}
	}
	if len(s.Key) != discovery.SessionKeyLen {
		return nil
	}
	tk.Session = s
	tk.mk.Set(tk.Key)
	tk.tail = append(tk.tail, `,"sess_exp":`...)
	tk.tail = strconv.AppendInt(tk.tail, tk.Exp, 10)
	if len(tk.Grant) > 0 {
		tk.tail = append(tk.tail, `,"grant":"`...)
		tk.tail = base64.StdEncoding.AppendEncode(tk.tail, tk.Grant)
		tk.tail = append(tk.tail, '"')
	}
	tk.tail = append(tk.tail, `,"mac":"`...)
	return &tk
}

// ticket is a session ticket as a peer keeps it: with its key's HMAC pads
// made once, when the ticket arrives, and the part of a MACed body that is
// the same for every announce with it (exp and grant).
type ticket struct {
	discovery.Session
	mk   discovery.MACKey
	tail []byte // `,"sess_exp":EXP[,"grant":"…"],"mac":"`
}

// plainSession reads a ticket written as the tracker writes it,
// `{"exp":N,"key":"…"[,"grant":"…"]}`, without reflection; ok is false for
// any other spelling.
func plainSession(b []byte) (s discovery.Session, ok bool) {
	field := func(name string) bool {
		if !bytes.HasPrefix(b, []byte(name)) {
			return false
		}
		b = b[len(name):]
		return true
	}
	b64 := func() ([]byte, bool) {
		j := bytes.IndexByte(b, '"')
		if j < 0 {
			return nil, false
		}
		d, err := base64.StdEncoding.AppendDecode(nil, b[:j])
		b = b[j+1:]
		return d, err == nil
	}
	if !field(`{"exp":`) {
		return s, false
	}
	j := bytes.IndexByte(b, ',')
	if j < 0 {
		return s, false
	}
	exp, err := strconv.ParseInt(string(b[:j]), 10, 64)
	if err != nil {
		return s, false
	}
	b = b[j:]
	s.Exp = exp
	if !field(`,"key":"`) {
		return s, false
	}
	if s.Key, ok = b64(); !ok {
		return s, false
	}
	if field(`,"grant":"`) {
		if s.Grant, ok = b64(); !ok {
			return s, false
		}
	}
	return s, field(`}`)
}

// roundTrip writes one pre-encoded HTTP/1.1 request on a keep-alive
// connection and reads the answer's status, discarding its body (by
// Content-Length or chunked) unless keep: then a body sent with
// Content-Length is returned.
func roundTrip(conn net.Conn, br *bufio.Reader, req []byte, keep bool) (int, []byte, error) {
	if _, err := conn.Write(req); err != nil {
		return 0, nil, err
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 || string(line[:5]) != "HTTP/" {
		return 0, nil, fmt.Errorf("bad status line %q", truncate(string(line), 64))
	}
	status, err := atoi(line[9:12])
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", truncate(string(line), 64))
	}
	var body []byte
	length, chunked, closing := -1, false, false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		if len(h) <= 2 {
			break
		}
		// Compared as bytes: no allocation per header line.
		k, v, _ := bytes.Cut(h, []byte{':'})
		k, v = bytes.TrimSpace(k), bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, hdrContentLength):
			if length, err = atoi(v); err != nil {
				return 0, nil, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, hdrTransferEncoding):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, hdrConnection):
			closing = bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case chunked:
		for {
			sl, err := br.ReadSlice('\n')
			if err != nil {
				return 0, nil, err
			}
			n, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(string(sl), ";", 2)[0]), 16, 32)
			if err != nil || n < 0 {
				return 0, nil, fmt.Errorf("bad chunk size %q", truncate(string(sl), 32))
			}
			if _, err := br.Discard(int(n) + 2); err != nil {
				return 0, nil, err
			}
			if n == 0 {
				break
			}
		}
	case length >= 0 && keep:
		body = make([]byte, length)
		if _, err := io.ReadFull(br, body); err != nil {
			return 0, nil, err
		}
	case length >= 0:
		if _, err := br.Discard(length); err != nil {
			return 0, nil, err
		}
	default:
		return 0, nil, errors.New("answer with neither Content-Length nor chunked body")
	}
	if closing {
		return status, body, io.ErrUnexpectedEOF // the server closes: reconnect
	}
	return status, body, nil
}

var (
	hdrContentLength    = []byte("Content-Length")
	hdrTransferEncoding = []byte("Transfer-Encoding")
	hdrConnection       = []byte("Connection")
)

// atoi parses a non-negative decimal of at most 9 digits without
// allocating.
func atoi(b []byte) (int, error) {
	if len(b) == 0 || len(b) > 9 {
		return 0, strconv.ErrSyntax
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// WriteLoadReport prints one line per target.
func WriteLoadReport(w io.Writer, cfg TrackerLoadConfig, rs []LoadResult) {
	_ = cfg.withDefaults()
	start := "warm: every peer's first announce sent before the clock starts"
	if cfg.Cold {
		start = "cold: the timed run opens with every peer's first announce"
	}
	fmt.Fprintf(w, "tracker load: %d peers in %d swarms (zipf %.2g), sessions of ~%d announces, %d connections, up to %v or %d announces per target (%s), GOMAXPROCS=%d\n",
		cfg.Peers, cfg.Swarms, cfg.ZipfS, cfg.Session, cfg.Conns, cfg.Duration, cfg.Announces, start, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "%-32s %10s %9s %8s %8s %9s %8s %8s %8s %9s\n", "target", "announce/s", "ok", "refused", "failed", "ticketed", "p50", "p99", "max", "cpu/ann")
	for _, r := range rs {
		fmt.Fprintf(w, "%-32s %10.0f %9d %8d %8d %9d %8s %8s %8s %7.1fµs\n", truncate(r.Target, 32), r.Rate(), r.OK, r.Refused, r.Failed, r.MACed,
			msec(r.P50), msec(r.P99), msec(r.Max), float64(r.CPUPerAnnounce())/float64(time.Microsecond))
		if r.FirstFail != "" {
			fmt.Fprintf(w, "  first failure: %s\n", r.FirstFail)
		}
	}
}

func msec(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// cpuTime is the CPU time, user and system, this process and the running
// children have used.
func cpuTime(children []*child) time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	t := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	for _, c := range children {
		t += procCPU(c.cmd.Process.Pid)
	}
	return t
}

// procCPU reads a process's CPU time from /proc (0 where there is none).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / 100 // USER_HZ, 100 on Linux
}

// child is a `shoal tracker` process the bench started.
type child struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	stderr *bytes.Buffer // the last of its log, for an error
}

// spawnTracker starts `exe tracker` on a free loopback port with the
// bench's token key trusted, each simulated peer's address taken from
// X-Forwarded-For, and extra args, and waits until it answers.
func spawnTracker(ctx context.Context, exe, trustKey string, extra []string) (*child, error) {
	if exe == "" {
		return nil, fmt.Errorf("%w: spawned targets need the shoal binary (TrackerLoadConfig.Exe)", ErrConfig)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close() // free for the child; another process taking it in between fails the start below
	args := append([]string{"tracker", "--listen", addr, "--trust", trustKey, "--trust-forwarded",
		"--max-peers-total", "0", "--max-swarms", "0"}, extra...)
	c := &child{cmd: exec.Command(exe, args...), addr: addr, exited: make(chan struct{}), stderr: &bytes.Buffer{}}
	c.cmd.Stdout = io.Discard
	c.cmd.Stderr = &tailWriter{b: c.stderr, max: 4 << 10}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s tracker: %w", exe, err)
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	for end := time.Now().Add(20 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return c, nil
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("shoal %s exited: %s", strings.Join(args, " "), strings.TrimSpace(c.stderr.String()))
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(end) {
			c.stop()
			return nil, fmt.Errorf("shoal tracker on %s not listening after 20 s", addr)
		}
	}
}

// stop ends the child with SIGTERM (a clean shutdown), then kills it if
// it has not exited within 10 s.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// tailWriter keeps the last max bytes written to b. Only the child's
// stderr copier writes; b is read after the child exited.
type tailWriter struct {
	b   *bytes.Buffer
	max int
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.b.Write(p)
	if over := w.b.Len() - w.max; over > 0 {
		w.b.Next(over)
	}
	return len(p), nil
}
