package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// partialSuffix ends the name of the hidden file or directory a get writes
// beside OUT: .OUT.shoal-partial. The name is derived from OUT alone, so a
// rerun after a crash or kill -9 finds what the last run left and resumes
// or removes it instead of leaving it behind.
const partialSuffix = ".shoal-partial"

// partialPath is where a get that writes dst keeps its unfinished output.
func partialPath(dst string) string {
	return filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+partialSuffix)
}

// output writes a fetch into a hidden partial file or directory beside its
// destination and renames it into place only when every byte is verified and
// synced, so a failed or interrupted get leaves nothing at the destination.
//
// The partial output is locked (flock) while a get writes it, so two gets of
// the same OUT do not write into each other; the kernel drops the lock when
// the process dies. A single file left by an interrupted run is resumed:
// chunks the cache lacks are taken from it when they hash right. A partial
// directory is emptied and written anew (the cache still holds what the last
// run verified).
type output struct {
	dst    string
	tmp    string // partialPath(dst): a file (single) or a directory
	single bool
	lock   *os.File // holds the flock: the partial file itself, or the directory
	// resumed: the partial file was left by an earlier run, so its bytes
	// may be reused once verified.
	resumed bool

	mu    sync.Mutex
	files map[string]*os.File // guarded by mu: open files by relative path ("" when single)
	done  bool                // guarded by mu: committed or aborted
}

func newOutput(dst string, single bool) (*output, error) {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	if st, err := os.Stat(dst); err == nil && (!single || st.IsDir()) {
		return nil, fmt.Errorf("%w: output %s already exists", ErrBadInput, dst)
	}
	o := &output{dst: dst, tmp: partialPath(dst), single: single, files: map[string]*os.File{}}
	if !single {
		// A directory to reuse is emptied below; a file from a
		// single-file get of the same OUT is simply removed.
		if st, err := os.Lstat(o.tmp); err == nil && !st.IsDir() {
			os.Remove(o.tmp)
		}
		if err := os.Mkdir(o.tmp, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("output: %w", err)
		}
	} else if st, err := os.Lstat(o.tmp); err == nil && st.IsDir() {
		// Left by a directory get of the same OUT: nothing to resume.
		if err := os.RemoveAll(o.tmp); err != nil {
			return nil, fmt.Errorf("output: removing %s left by an earlier get: %w", o.tmp, err)
		}
	}
	lock, err := lockPartial(o.tmp, single)
	if err != nil {
		return nil, err
	}
	o.lock = lock
	if single {
		o.files[""] = lock
		st, err := lock.Stat()
		if err != nil {
			lock.Close()
			return nil, fmt.Errorf("output: %w", err)
		}
		o.resumed = st.Size() > 0
		return o, nil
	}
	if err := emptyDir(o.tmp); err != nil {
		lock.Close()
		return nil, fmt.Errorf("output: clearing %s left by an earlier get: %w", o.tmp, err)
	}
	return o, nil
}

// lockPartial opens (creating if needed) the partial output at p and takes
// an exclusive lock on it. It retries when p was renamed into place or
// removed between the open and the lock, so the lock held is always on what
// p names.
func lockPartial(p string, single bool) (*os.File, error) {
	for range 10 {
		var (
			f   *os.File
			err error
		)
		if single {
			f, err = os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		} else {
			f, err = os.Open(p)
		}
		if err != nil {
			return nil, fmt.Errorf("output: %w", err)
		}
		if err := flockNB(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("%w: %s is being written by another shoal get (%v)", ErrBadInput, p, err)
		}
		held, err1 := f.Stat()
		named, err2 := os.Lstat(p)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return f, nil
		}
		f.Close()
		if !single {
			if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("output: %w", err)
			}
		}
	}
	return nil, fmt.Errorf("output: %s keeps changing under another shoal get", p)
}

// emptyDir removes everything inside dir.
func emptyDir(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
			return err
		}
	}
	return nil
}

// create makes (or, when single, sizes) the file at rel.
func (o *output) create(rel string, size int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.files[rel]
	if f == nil {
		p := filepath.Join(o.tmp, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		var err error
		if f, err = os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		o.files[rel] = f
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	return nil
}

func (o *output) writeAt(rel string, b []byte, off int64) error {
	o.mu.Lock()
	f := o.files[rel]
	o.mu.Unlock()
	if _, err := f.WriteAt(b, off); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	return nil
}

// earlier returns the size bytes at off that an interrupted run may have
// written into a resumed partial file, or nil when there is none. The
// caller verifies them: a run killed mid-write leaves zeroes or torn bytes.
func (o *output) earlier(rel string, off, size int64) []byte {
	if !o.resumed {
		return nil
	}
	o.mu.Lock()
	f := o.files[rel]
	o.mu.Unlock()
	b := make([]byte, size)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil
	}
	return b
}

// commit syncs every file, renames the result into place and closes it, so
// the lock is held until the partial output has its final name.
func (o *output) commit() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for rel, f := range o.files {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		if rel == "" {
			continue // the lock: closed after the rename
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		delete(o.files, rel)
	}
	mode := os.FileMode(0o755)
	if o.single {
		mode = 0o644
	}
	if err := os.Chmod(o.tmp, mode); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if err := os.Rename(o.tmp, o.dst); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	o.done = true
	o.files = nil
	if err := o.lock.Close(); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if d, err := os.Open(filepath.Dir(o.dst)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// abort removes the partial output unless it was committed.
func (o *output) abort() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return
	}
	o.done = true
	for _, f := range o.files {
		if f != o.lock {
			f.Close()
		}
	}
	// Removed while still locked, so no other get can be writing it.
	os.RemoveAll(o.tmp)
	o.lock.Close()
}
