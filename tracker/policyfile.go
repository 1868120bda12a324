package tracker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// policyFileCheck is how often the tracker looks whether Config.PolicyFile
// changed.
const policyFileCheck = 2 * time.Second

// fileWatch is what the policy file looked like when last read.
type fileWatch struct {
	mod  time.Time
	size int64
}

// loadPolicyFile reads Config.PolicyFile and sets its policy. A policy no
// newer than the current one (already set, or a newer one pushed since) is
// kept out quietly; any other failure is an error naming the file.
func (s *Server) loadPolicyFile(ctx context.Context) (*fileWatch, error) {
	path := s.cfg.PolicyFile
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err) // names the file
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	fw := &fileWatch{mod: fi.ModTime(), size: fi.Size()}
	_, err = s.SetPolicy(ctx, bytes.TrimRight(doc, " \t\r\n"))
	switch {
	case errors.Is(err, ErrStalePolicy):
		s.log.Info("policy file not newer than the policy held; keeping that", "file", path, "why", err)
	case err != nil:
		return fw, fmt.Errorf("policy file %s: %w", path, err)
	}
	return fw, nil
}

// watchPolicyFile sets the file's policy again whenever the file changes
// (its modification time or size), until ctx ends. A file that does not
// verify is logged and the policy held kept.
func (s *Server) watchPolicyFile(ctx context.Context, last *fileWatch) {
	t := time.NewTicker(policyFileCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(s.cfg.PolicyFile)
		if err != nil || (fi.ModTime().Equal(last.mod) && fi.Size() == last.size) {
			continue
		}
		fw, err := s.loadPolicyFile(ctx)
		if err != nil {
			s.log.Warn("policy file changed but not taken", "err", err)
		}
		if fw != nil {
			last = fw
		}
	}
}
