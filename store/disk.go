package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/shoal-cdn/shoal/core"
)

// tempPrefix starts the name of every file a Put is still writing. Such files sit
// in Dir itself, never in a shard directory, so a crash cannot leave anything but
// complete chunks under a chunk name; Open deletes them.
const tempPrefix = ".put-"

func (s *Store) path(h core.Hash) string {
	x := h.String()
	return filepath.Join(s.cfg.Dir, x[:2], x)
}

// writeChunk writes data under h's name atomically: temp file, write, fsync,
// rename. The data is durable before the name exists, so a crash can lose a
// chunk but never leave part of one under its name. Making the rename itself
// durable is left to the background dirSyncer: a chunk lost that way is only
// fetched again, and waiting for a directory fsync on every Put would cost more
// than the write.
func (s *Store) writeChunk(h core.Hash, data []byte) (err error) {
	if s.inject != nil {
		if err := s.inject(); err != nil {
			return fmt.Errorf("chunk %s: %w", h.Short(), err)
		}
	}
	f, err := os.CreateTemp(s.cfg.Dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("chunk %s: %w", h.Short(), err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("chunk %s: %w", h.Short(), err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if !s.cfg.NoSync {
		if err = f.Sync(); err != nil {
			return err
		}
	}
	if err = f.Close(); err != nil {
		return err
	}
	dst := s.path(h)
	shard := filepath.Dir(dst)
	err = os.Rename(tmp, dst)
	if errors.Is(err, fs.ErrNotExist) {
		// Shard directories are made on first use so an empty cache is empty.
		if err = os.Mkdir(shard, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		s.dirs.mark(s.cfg.Dir)
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		return err
	}
	if noDirSync {
		return nil
	}
	return syncDir(shard)
}

var noDirSync = true

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// dirSyncer fsyncs directories whose entries changed, in the background and
// coalesced: however many renames land in a shard while one round of fsyncs
// runs, the next round syncs that shard once.
type dirSyncer struct {
	log *slog.Logger

	mu      sync.Mutex // guards dirty and running
	idle    sync.Cond  // on mu; broadcast when the worker exits
	dirty   map[string]struct{}
	running bool // a worker goroutine is draining dirty
}

func newDirSyncer(log *slog.Logger) *dirSyncer {
	d := &dirSyncer{log: log, dirty: map[string]struct{}{}}
	d.idle.L = &d.mu
	return d
}

// mark queues dir for an fsync and starts the worker if none is running.
func (d *dirSyncer) mark(dir string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dirty[dir] = struct{}{}
	if !d.running {
		d.running = true
		go d.run()
	}
}

func (d *dirSyncer) run() {
	d.mu.Lock()
	for len(d.dirty) > 0 {
		batch := d.dirty
		d.dirty = map[string]struct{}{}
		d.mu.Unlock()
		for dir := range batch {
			if err := syncDir(dir); err != nil {
				d.log.Error("chunk store: syncing directory", "dir", dir, "err", err)
			}
		}
		d.mu.Lock()
	}
	d.running = false
	d.idle.Broadcast()
	d.mu.Unlock()
}

// flush waits until every directory marked so far has been synced.
func (d *dirSyncer) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.running {
		d.idle.Wait()
	}
}
