package main

import (
	"flag"
	"log/slog"
	"os"

	"github.com/shoal-cdn/shoal/agent"
	"github.com/shoal-cdn/shoal/audit"
	"github.com/shoal-cdn/shoal/core"
	"github.com/shoal-cdn/shoal/manifest"
)

// auditFlags are the audit log flags of the daemons (tracker, peer).
type auditFlags struct {
	path, maxSize *string
	keep          *int
	rawIPs        *bool
}

func addAuditFlags(fs *flag.FlagSet) auditFlags {
	return auditFlags{
		path:    fs.String("audit-log", "", "append security events (refusals, joins and leaves, bans, revocations) to this file as JSON lines (default: no audit log)"),
		maxSize: fs.String("audit-max-size", "100MiB", "rotate the audit log when it reaches this size (whole MiB)"),
		keep:    fs.Int("audit-keep", audit.DefaultKeep, "rotated audit log files kept; older ones are deleted"),
		rawIPs:  fs.Bool("audit-raw-ips", false, "store peer IP addresses as seen; by default each is replaced by a keyed hash under a key kept only in memory and replaced daily"),
	}
}

// open builds the audit sink: nil (no audit log) when --audit-log is
// empty. close flushes it.
func (a auditFlags) open(log *slog.Logger) (audit.Sink, func(), error) {
	if *a.path == "" {
		return nil, func() {}, nil
	}
	size, err := core.ParseSize(*a.maxSize)
	if err != nil || size < 1<<20 {
		return nil, nil, usagef("--audit-max-size %q: want a size of at least 1MiB, such as 100MiB", *a.maxSize)
	}
	if *a.keep < 1 {
		return nil, nil, usagef("--audit-keep %d: want at least 1", *a.keep)
	}
	w, err := audit.NewWriter(audit.WriterConfig{Path: *a.path, MaxSize: size, Keep: *a.keep, RawIPs: *a.rawIPs, Logger: log})
	if err != nil {
		return nil, nil, usagef("--audit-log: %v", err)
	}
	return w, func() {
		if err := w.Close(); err != nil {
			log.Error("audit log: close", "path", *a.path, "err", err)
		}
	}, nil
}

// loadTrustFileOnce adds the keys of pc.TrustFile to pc.Trust for a
// one-shot command, which has no use for re-reading it.
func loadTrustFileOnce(pc *agent.PeerConfig) error {
	if pc.TrustFile == "" {
		return nil
	}
	b, err := os.ReadFile(pc.TrustFile)
	if err != nil {
		return usagef("--trust-file: %v", err)
	}
	keys, err := manifest.ParseTrustFile(b)
	if err != nil {
		return usagef("--trust-file %s: %v", pc.TrustFile, err)
	}
	pc.Trust.Replace(append(pc.Trust.Keys(), keys...))
	pc.TrustFile = ""
	return nil
}
