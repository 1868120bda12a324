package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/shoal-cdn/shoal/core"
)

// Defaults of WriterConfig.
const (
	DefaultMaxSize     = 100 << 20 // bytes per file before it is rotated
	DefaultKeep        = 5         // rotated files kept
	DefaultKeyRotation = 24 * time.Hour
	DefaultQueue       = 4096 // events waiting to be written
)

// ErrBadConfig is returned by NewWriter for a configuration it cannot use.
var ErrBadConfig = errors.New("audit: bad configuration")

// WriterConfig configures a Writer.
type WriterConfig struct {
	// Path is the log file. Rotated files sit beside it, named after it
	// with the time of rotation (app-2026-11-30T10-00-00.000.log).
	Path string `yaml:"path"`
	// MaxSize is the size in bytes at which the file is rotated (default
	// DefaultMaxSize), rounded up to a whole MiB.
	MaxSize int64 `yaml:"max_size"`
	// Keep is how many rotated files are kept (default DefaultKeep); older
	// ones are deleted.
	Keep int `yaml:"keep"`
	// RawIPs stores addresses as seen. By default each address is replaced
	// by a keyed hash (HMAC-SHA256, truncated) under a key that lives only
	// in memory and is replaced every KeyRotation: within one period the
	// same address gives the same pseudonym, so one actor's events can be
	// followed, and once the key is gone nobody can map it back.
	RawIPs bool `yaml:"raw_ips"`
	// KeyRotation is how long one pseudonym key is used (default
	// DefaultKeyRotation); periods are aligned to multiples of it since
	// the Unix epoch (daily: midnight UTC).
	KeyRotation time.Duration `yaml:"key_rotation"`
	// Queue bounds the events waiting to be written (default
	// DefaultQueue). Record never waits: when the queue is full the event
	// is dropped and counted (shoal_audit_dropped_total).
	Queue int `yaml:"queue"`
	// Clock stamps events that come without a time; nil: the wall clock.
	// An event's time picks the pseudonym key's period.
	Clock core.Clock `yaml:"-"`
	// Logger reports write errors; nil: nowhere.
	Logger *slog.Logger `yaml:"-"`
}

// Writer is a Sink that writes one JSON line per Event to a file rotated by
// size. Record hands the event to a bounded queue and returns; one
// goroutine pseudonymises, encodes and writes, flushing whenever the queue
// runs dry, so a burst costs one write system call, not one per event.
// Writer is also a prometheus.Collector of its counters.
type Writer struct {
	cfg   WriterConfig
	clock core.Clock
	out   io.WriteCloser
	q     chan Event
	done  chan struct{}

	mu     sync.RWMutex // guards closed against Record sending on a closed q
	closed bool

	written, dropped, failed atomic.Uint64

	// Owned by the writing goroutine.
	bw     *bufio.Writer
	line   bytes.Buffer
	enc    *json.Encoder
	pseudo *Pseudonymizer
}

var (
	_ Sink                 = (*Writer)(nil)
	_ prometheus.Collector = (*Writer)(nil)
)

// NewWriter opens (appends to) cfg.Path and starts writing. Close it to
// flush and stop.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("%w: no log file path", ErrBadConfig)
	}
	if cfg.MaxSize < 0 || cfg.Keep < 0 || cfg.KeyRotation < 0 || cfg.Queue < 0 {
		return nil, fmt.Errorf("%w: %s: max size %d, keep %d, key rotation %v and queue %d must not be negative", ErrBadConfig, cfg.Path, cfg.MaxSize, cfg.Keep, cfg.KeyRotation, cfg.Queue)
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.Keep == 0 {
		cfg.Keep = DefaultKeep
	}
	lj := &lumberjack.Logger{
		Filename:   cfg.Path,
		MaxSize:    int((cfg.MaxSize + 1<<20 - 1) >> 20),
		MaxBackups: cfg.Keep,
	}
	// Open now, so a path that cannot be written is an error at start
	// rather than lost events later.
	if _, err := lj.Write(nil); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", cfg.Path, err)
	}
	return newWriter(cfg, lj), nil
}

// newWriter starts a Writer on out (tests pass their own).
func newWriter(cfg WriterConfig, out io.WriteCloser) *Writer {
	if cfg.KeyRotation == 0 {
		cfg.KeyRotation = DefaultKeyRotation
	}
	if cfg.Queue == 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{cfg: cfg, clock: cfg.Clock, out: out, q: make(chan Event, cfg.Queue), done: make(chan struct{}), pseudo: NewPseudonymizer(cfg.KeyRotation)}
	if w.clock == nil {
		w.clock = core.RealClock{}
	}
	w.bw = bufio.NewWriterSize(out, 64<<10)
	w.enc = json.NewEncoder(&w.line)
	w.enc.SetEscapeHTML(false)
	go w.run()
	return w
}

// Record queues e for writing, stamping it with the clock's time if it has
// none. It never blocks on I/O: with the queue full, e is dropped and
// counted. Events recorded after Close are dropped too.
func (w *Writer) Record(e Event) {
	if e.Time.IsZero() {
		e.Time = w.clock.Now()
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	select {
	case w.q <- e:
	default:
		w.dropped.Add(1)
	}
}

// Close writes what is queued, flushes and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.q)
	w.mu.Unlock()
	<-w.done
	err := w.bw.Flush()
	if cerr := w.out.Close(); err == nil {
		err = cerr
	}
	return err
}

// Dropped is the number of events dropped because the queue was full (or
// the Writer closed).
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

func (w *Writer) run() {
	defer close(w.done)
	for e := range w.q {
		w.write(e)
		if len(w.q) == 0 {
			if err := w.bw.Flush(); err != nil {
				w.failed.Add(1)
				w.cfg.Logger.Error("audit log: write", "path", w.cfg.Path, "err", err)
			}
		}
	}
}

func (w *Writer) write(e Event) {
	e.Time = e.Time.UTC()
	if e.IP != "" && !w.cfg.RawIPs {
		e.IP = w.pseudo.Pseudonym(e.IP, e.Time)
	}
	w.line.Reset()
	if err := w.enc.Encode(&e); err != nil {
		w.failed.Add(1)
		return
	}
	if _, err := w.bw.Write(w.line.Bytes()); err != nil {
		w.failed.Add(1)
		w.cfg.Logger.Error("audit log: write", "path", w.cfg.Path, "err", err)
		return
	}
	w.written.Add(1)
}

var (
	descWritten = prometheus.NewDesc("shoal_audit_events_total", "Audit events written to the audit log.", nil, nil)
	descDropped = prometheus.NewDesc("shoal_audit_dropped_total", "Audit events dropped because the audit log's queue was full.", nil, nil)
	descFailed  = prometheus.NewDesc("shoal_audit_write_errors_total", "Failed writes to the audit log.", nil, nil)
)

// Describe implements prometheus.Collector.
func (w *Writer) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWritten
	ch <- descDropped
	ch <- descFailed
}

// Collect implements prometheus.Collector.
func (w *Writer) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descWritten, prometheus.CounterValue, float64(w.written.Load()))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(w.dropped.Load()))
	ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(w.failed.Load()))
}
