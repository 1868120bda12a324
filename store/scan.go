package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// emptyHash names the one chunk that may be empty.
var emptyHash = core.SumSHA256(nil)

// found is one file under a chunk name, as listed at Open.
type found struct {
	hash  core.Hash
	size  int64
	mtime time.Time
}

// scan rebuilds the index from the directory listing, reading no chunk: it
// costs a stat per chunk, not a hash of every byte. A crash can leave temp
// files (removed) and, after a power loss or a misbehaving disk, files under
// chunk names that are not what their names say. Those that cannot be a
// chunk at all (bad name, not a regular file, empty or over the maximum
// size) are removed here; the rest are indexed unverified, and the first
// read of each hashes it (whatever VerifyOnRead says) and removes it if it
// is damaged, as Scrub does in the background. So a chunk's bytes are never
// served unchecked after a restart.
func (s *Store) scan() error {
	top, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("store %s: %w", s.cfg.Dir, err)
	}
	var files []found
	for _, de := range top {
		name := de.Name()
		switch {
		case !de.IsDir() && strings.HasPrefix(name, tempPrefix):
			s.removeStray(filepath.Join(s.cfg.Dir, name), "leftover temp file")
			s.n.tempRemoved.Add(1)
		case de.IsDir() && isShard(name):
			more, err := s.scanShard(name)
			if err != nil {
				return err
			}
			files = append(files, more...)
		}
	}
	// Oldest first, so pushing each to the front leaves the newest there.
	sort.SliceStable(files, func(i, j int) bool { return files[i].mtime.Before(files[j].mtime) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range files {
		e := &entry{hash: f.hash}
		s.entries[f.hash] = e
		s.addPresentLocked(e, f.size)
	}
	return nil
}

func isShard(name string) bool {
	const digits = "0123456789abcdef"
	return len(name) == 2 && strings.IndexByte(digits, name[0]) >= 0 && strings.IndexByte(digits, name[1]) >= 0
}

// scanShard lists the chunk files of one shard directory, removing files that
// cannot be chunks.
func (s *Store) scanShard(shard string) ([]found, error) {
	dir := filepath.Join(s.cfg.Dir, shard)
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", s.cfg.Dir, err)
	}
	var files []found
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		if de.IsDir() {
			s.log.Warn("chunk store: ignoring directory in shard", "path", p)
			continue
		}
		h, err := core.ParseHash(de.Name())
		if err != nil || !strings.HasPrefix(de.Name(), shard) || !de.Type().IsRegular() {
			s.removeStray(p, "not a chunk name or not a regular file")
			s.n.corruptAtScan.Add(1)
			continue
		}
		fi, err := de.Info()
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // else: gone since the listing
				s.log.Warn("chunk store: skipping unreadable chunk", "path", p, "err", err)
			}
			continue
		}
		if why := implausibleSize(h, fi.Size()); why != "" {
			s.removeStray(p, why)
			s.n.corruptAtScan.Add(1)
			continue
		}
		files = append(files, found{hash: h, size: fi.Size(), mtime: fi.ModTime()})
	}
	return files, nil
}

// implausibleSize says why no chunk named h can have size bytes, or "".
// A write torn by a power loss often leaves an empty file.
func implausibleSize(h core.Hash, size int64) string {
	switch {
	case size > core.MaxChunkSize:
		return fmt.Sprintf("%d bytes, over the maximum chunk size", size)
	case size == 0 && h != emptyHash:
		return "empty"
	}
	return ""
}

func (s *Store) removeStray(path, why string) {
	s.log.Warn("chunk store: removing bad file", "path", path, "why", why)
	if err := os.Remove(path); err != nil {
		s.log.Error("chunk store: removing bad file", "path", path, "err", err)
	}
}
