package store

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// found is one file under a chunk name, and what re-hashing it showed.
type found struct {
	hash  core.Hash
	path  string
	ok    bool
	why   string
	size  int64
	mtime time.Time
}

// scan rebuilds the index from disk. A crash can leave temp files (removed) and,
// if the disk itself misbehaved, damaged files under chunk names; every chunk is
// re-hashed in parallel and kept only if it matches its name.
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

	verifyAll(files)

	kept := files[:0]
	for _, f := range files {
		if !f.ok {
			s.removeStray(f.path, f.why)
			s.n.corruptAtScan.Add(1)
			continue
		}
		kept = append(kept, f)
	}
	// Oldest first, so pushing each to the front leaves the newest there.
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].mtime.Before(kept[j].mtime) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range kept {
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
		files = append(files, found{hash: h, path: p})
	}
	return files, nil
}

// verifyAll re-hashes files with one worker per CPU, filling in each result.
func verifyAll(files []found) {
	work := make(chan *found)
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			for f := range work {
				verifyFile(f, buf)
			}
		})
	}
	for i := range files {
		work <- &files[i]
	}
	close(work)
	wg.Wait()
}

func verifyFile(f *found, buf []byte) {
	fd, err := os.Open(f.path)
	if err != nil {
		f.why = err.Error()
		return
	}
	defer fd.Close()
	fi, err := fd.Stat()
	if err != nil {
		f.why = err.Error()
		return
	}
	if fi.Size() > core.MaxChunkSize {
		f.why = fmt.Sprintf("%d bytes, over the maximum chunk size", fi.Size())
		return
	}
	hw := sha256.New()
	n, err := io.CopyBuffer(hw, io.LimitReader(fd, core.MaxChunkSize+1), buf)
	if err != nil {
		f.why = err.Error()
		return
	}
	if core.Hash(hw.Sum(nil)) != f.hash {
		f.why = "content does not match its name"
		return
	}
	f.ok, f.size, f.mtime = true, n, fi.ModTime()
}

func (s *Store) removeStray(path, why string) {
	s.log.Warn("chunk store: removing bad file", "path", path, "why", why)
	if err := os.Remove(path); err != nil {
		s.log.Error("chunk store: removing bad file", "path", path, "err", err)
	}
}
