package main

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/shoal-cdn/shoal/accesslog"
	"github.com/shoal-cdn/shoal/core"
)

// addLogFlags gives a command --log-format and --log-level (newFlagSet does,
// for every command). Their env twins follow the usual rule:
// SHOAL_PEER_LOG_FORMAT, SHOAL_TRACKER_LOG_LEVEL, …
func addLogFlags(fs *flag.FlagSet) {
	fs.String("log-format", "text", "log line format on stderr: text (key=value) or json (one JSON object a line)")
	fs.String("log-level", "info", "least severe log level written: debug, info, warn or error")
}

// quieterLogs makes warn the default log level of a command whose stderr is
// a person's terminal (get): flags, env and the config file still win.
func quieterLogs(fs *flag.FlagSet) {
	f := fs.Lookup("log-level")
	f.DefValue = "warn"
	_ = f.Value.Set("warn") // a plain string flag: cannot fail
}

// newLogger is the one place a command's logger is made, from its parsed
// --log-format and --log-level, writing to w. When w is the process's
// stderr it also becomes slog's default, so code that logs through
// slog.Default() follows the flags (in-process tests pass their own w and
// leave the default alone).
func newLogger(fs *flag.FlagSet, w io.Writer) (*slog.Logger, error) {
	format := fs.Lookup("log-format").Value.String()
	levelText := fs.Lookup("log-level").Value.String()
	var level slog.Level
	switch strings.ToLower(levelText) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, usagef("--log-level %q: want debug, info, warn or error", levelText)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, usagef("--log-format %q: want text or json", format)
	}
	log := slog.New(h)
	if w == io.Writer(os.Stderr) {
		slog.SetDefault(log)
	}
	return log, nil
}

// accessLogFlags are the access log flags of the daemons that serve HTTP
// (origin, peer gateway, tracker).
type accessLogFlags struct {
	path, maxSize *string
	keep          *int
	rawIPs        *bool
}

func addAccessLogFlags(fs *flag.FlagSet) accessLogFlags {
	return accessLogFlags{
		path:    fs.String("access-log", "", "write one JSON line per HTTP request (time, daemon, remote, method, path, status, bytes, duration_ms, range, user_agent, request_id) to this file, or - for stdout (default: no access log)"),
		maxSize: fs.String("access-log-max-size", "100MiB", "rotate the access log file when it reaches this size (whole MiB)"),
		keep:    fs.Int("access-log-keep", accesslog.DefaultKeep, "rotated access log files kept; older ones are deleted"),
		rawIPs:  fs.Bool("access-log-raw-ips", false, "log client IP addresses as seen; by default each is replaced by a keyed hash under a key kept only in memory and replaced daily"),
	}
}

// open opens the access log: nil (none) when --access-log is empty. close
// flushes it.
func (a accessLogFlags) open(log *slog.Logger) (*accesslog.Log, func(), error) {
	if *a.path == "" {
		return nil, func() {}, nil
	}
	size, err := core.ParseSize(*a.maxSize)
	if err != nil || size < 1<<20 {
		return nil, nil, usagef("--access-log-max-size %q: want a size of at least 1MiB, such as 100MiB", *a.maxSize)
	}
	if *a.keep < 1 {
		return nil, nil, usagef("--access-log-keep %d: want at least 1", *a.keep)
	}
	l, err := accesslog.Open(accesslog.Config{Path: *a.path, MaxSize: size, Keep: *a.keep, RawIPs: *a.rawIPs, Logger: log})
	if err != nil {
		return nil, nil, usagef("--access-log: %v", err)
	}
	return l, func() {
		if err := l.Close(); err != nil {
			log.Error("access log: close", "path", *a.path, "err", err)
		}
	}, nil
}
