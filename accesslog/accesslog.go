// Package accesslog writes one JSON line per HTTP request, in the same
// format for every Shoal daemon that serves HTTP (the origin, the peer's
// gateway, the tracker), so one log pipeline reads them all:
//
//	{"time":"2026-11-30T14:00:00.123Z","daemon":"origin","remote":"~hmQ…","method":"GET",
//	 "path":"/c/ID/chunks/3","status":206,"bytes":262144,"duration_ms":1.52,
//	 "range":"bytes=0-262143","user_agent":"curl/8.5.0","request_id":"5f0c…"}
//
// Remote addresses are pseudonymised as in the audit log (audit.Pseudonymizer)
// unless RawIPs. The file rotates by size. Handing a line to the log never
// blocks the request: a bounded queue feeds one writing goroutine, and a
// line that finds the queue full is dropped and counted. A building block:
// the roles import it.
package accesslog

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
)

// Defaults of Config.
const (
	DefaultMaxSize = 100 << 20 // bytes per file before it is rotated
	DefaultKeep    = 5         // rotated files kept
	DefaultQueue   = 8192      // lines waiting to be written
)

// Stdout is the Path that writes the log to standard output.
const Stdout = "-"

// RequestIDHeader carries the request ID: taken from the request when the
// client (or a proxy in front) sent a usable one, else made up, and set on
// the response either way.
const RequestIDHeader = "X-Request-Id"

// maxRequestID bounds a client-chosen request ID; a longer one is replaced.
const maxRequestID = 64

// maxField bounds the path, range and user agent kept per line.
const maxField = 1024

// ErrBadConfig is wrapped by Open's configuration errors.
var ErrBadConfig = errors.New("access log: bad configuration")

// Config configures a Log.
type Config struct {
	// Path is the log file, or Stdout ("-"). Rotated files sit beside it.
	Path string `yaml:"path"`
	// MaxSize is the size in bytes at which the file is rotated (default
	// DefaultMaxSize), rounded up to a whole MiB. Not for Stdout.
	MaxSize int64 `yaml:"max_size"`
	// Keep is how many rotated files are kept (default DefaultKeep).
	Keep int `yaml:"keep"`
	// RawIPs logs client addresses as seen instead of pseudonyms.
	RawIPs bool `yaml:"raw_ips"`
	// Queue bounds the lines waiting to be written (default DefaultQueue).
	Queue int `yaml:"queue"`
	// Clock stamps lines and times requests; nil: the wall clock.
	Clock core.Clock `yaml:"-"`
	// Logger reports write errors; nil: nowhere.
	Logger *slog.Logger `yaml:"-"`
	// Out replaces the file (tests); Path is then only a name.
	Out io.Writer `yaml:"-"`
}

// Entry is one request, as written. The field names are the format.
type Entry struct {
	Time       time.Time `json:"time"`
	Daemon     string    `json:"daemon"` // origin, gateway or tracker
	Remote     string    `json:"remote"` // pseudonym (or address with RawIPs)
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Status     int       `json:"status"`
	Bytes      int64     `json:"bytes"` // response body bytes written
	DurationMS float64   `json:"duration_ms"`
	Range      string    `json:"range,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	RequestID  string    `json:"request_id"`
}

// Log is an open access log. A nil *Log logs nothing, so a daemon can wrap
// its handler unconditionally. Log is also a prometheus.Collector of its
// counters.
type Log struct {
	cfg    Config
	clock  core.Clock
	out    io.Writer
	closer io.Closer // nil for Stdout and Config.Out
	q      chan Entry
	done   chan struct{}

	mu     sync.RWMutex // guards closed against sending on a closed q
	closed bool

	written, dropped, failed atomic.Uint64

	// Owned by the writing goroutine.
	bw     *bufio.Writer
	line   bytes.Buffer
	enc    *json.Encoder
	pseudo *audit.Pseudonymizer
}

var _ prometheus.Collector = (*Log)(nil)

// Open opens (appends to) cfg.Path and starts writing. Close it to flush.
func Open(cfg Config) (*Log, error) {
	if cfg.Path == "" && cfg.Out == nil {
		return nil, fmt.Errorf("%w: no path (want a file, or - for standard output)", ErrBadConfig)
	}
	if cfg.MaxSize < 0 || cfg.Keep < 0 || cfg.Queue < 0 {
		return nil, fmt.Errorf("%w: %s: max size %d, keep %d and queue %d must not be negative", ErrBadConfig, cfg.Path, cfg.MaxSize, cfg.Keep, cfg.Queue)
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.Keep == 0 {
		cfg.Keep = DefaultKeep
	}
	if cfg.Queue == 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{cfg: cfg, clock: cfg.Clock, q: make(chan Entry, cfg.Queue), done: make(chan struct{}), pseudo: audit.NewPseudonymizer(0)}
	if l.clock == nil {
		l.clock = core.RealClock{}
	}
	switch {
	case cfg.Out != nil:
		l.out = cfg.Out
	case cfg.Path == Stdout:
		l.out = os.Stdout
	default:
		lj := &lumberjack.Logger{Filename: cfg.Path, MaxSize: int((cfg.MaxSize + 1<<20 - 1) >> 20), MaxBackups: cfg.Keep}
		// Open now, so a path that cannot be written fails at start.
		if _, err := lj.Write(nil); err != nil {
			return nil, fmt.Errorf("access log %s: %w", cfg.Path, err)
		}
		l.out, l.closer = lj, lj
	}
	l.bw = bufio.NewWriterSize(l.out, 64<<10)
	l.enc = json.NewEncoder(&l.line)
	l.enc.SetEscapeHTML(false)
	go l.run()
	return l, nil
}

// Close writes what is queued, flushes and closes the file. Lines handed
// over after Close are dropped.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.q)
	l.mu.Unlock()
	<-l.done
	err := l.bw.Flush()
	if l.closer != nil {
		if cerr := l.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Record queues e for writing without waiting; with the queue full it is
// dropped and counted.
func (l *Log) Record(e Entry) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.q <- e:
	default:
		l.dropped.Add(1)
	}
}

func (l *Log) run() {
	defer close(l.done)
	for e := range l.q {
		l.write(e)
		if len(l.q) == 0 {
			if err := l.bw.Flush(); err != nil {
				l.failed.Add(1)
				l.cfg.Logger.Error("access log: write", "path", l.cfg.Path, "err", err)
			}
		}
	}
}

func (l *Log) write(e Entry) {
	e.Time = e.Time.UTC()
	if !l.cfg.RawIPs && e.Remote != "" {
		e.Remote = l.pseudo.Pseudonym(e.Remote, e.Time)
	}
	l.line.Reset()
	if err := l.enc.Encode(&e); err != nil {
		l.failed.Add(1)
		return
	}
	if _, err := l.bw.Write(l.line.Bytes()); err != nil {
		l.failed.Add(1)
		l.cfg.Logger.Error("access log: write", "path", l.cfg.Path, "err", err)
		return
	}
	l.written.Add(1)
}

// Wrap returns next with every request logged as from daemon. On a nil Log
// it returns next itself.
func (l *Log) Wrap(daemon string, next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := l.clock.Now()
		id := r.Header.Get(RequestIDHeader)
		if !usableID(id) {
			id = newID()
		}
		w.Header().Set(RequestIDHeader, id)
		rw := &recorder{ResponseWriter: w}
		defer func() {
			status := rw.status
			if status == 0 {
				status = http.StatusOK // nothing written: net/http answers 200
			}
			// The entry outlives the request (another goroutine writes
			// it), so it holds copies: a server may reuse the request's
			// memory once the handler returns (fasthttp's adaptor does).
			l.Record(Entry{
				Time: start, Daemon: daemon, Remote: strings.Clone(r.RemoteAddr), Method: strings.Clone(r.Method),
				Path: strings.Clone(clip(r.URL.EscapedPath())), Status: status, Bytes: rw.bytes,
				DurationMS: float64(l.clock.Now().Sub(start).Microseconds()) / 1000,
				Range:      strings.Clone(clip(r.Header.Get("Range"))), UserAgent: strings.Clone(clip(r.UserAgent())), RequestID: strings.Clone(id),
			})
		}()
		next.ServeHTTP(rw, r)
	})
}

// usableID accepts a client's request ID of printable ASCII without quotes
// or spaces, at most maxRequestID long.
func usableID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func newID() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b[:])
}

func clip(s string) string {
	if len(s) > maxField {
		return s[:maxField]
	}
	return s
}

// recorder notes the status and counts body bytes. Unwrap lets
// http.ResponseController reach the connection (write deadlines, flush).
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush passes a flush on, for handlers that stream.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var (
	descWritten = prometheus.NewDesc("shoal_access_log_lines_total", "Requests written to the access log.", nil, nil)
	descDropped = prometheus.NewDesc("shoal_access_log_dropped_total", "Access log lines dropped because the queue was full.", nil, nil)
	descFailed  = prometheus.NewDesc("shoal_access_log_write_errors_total", "Failed writes to the access log.", nil, nil)
)

// Describe implements prometheus.Collector.
func (l *Log) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWritten
	ch <- descDropped
	ch <- descFailed
}

// Collect implements prometheus.Collector.
func (l *Log) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descWritten, prometheus.CounterValue, float64(l.written.Load()))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(l.dropped.Load()))
	ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(l.failed.Load()))
}

// Parse reads an access log: one Entry per line, each strictly of this
// format (no unknown field; time, daemon, method, path, status and
// request_id present). For tests and tools that read the log back.
func Parse(r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var e Entry
		if err := dec.Decode(&e); err != nil {
			return out, fmt.Errorf("access log line %d: %w", n, err)
		}
		if e.Time.IsZero() || e.Daemon == "" || e.Method == "" || e.Path == "" || e.Status == 0 || e.RequestID == "" {
			return out, fmt.Errorf("access log line %d: %q lacks one of time, daemon, method, path, status, request_id", n, sc.Text())
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
