package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// output writes a fetch into a hidden temporary file or directory beside its
// destination and renames it into place only when every byte is verified and
// synced, so a failed or interrupted get leaves nothing at the destination.
type output struct {
	dst    string
	tmp    string // temporary file (single) or directory
	single bool

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
	o := &output{dst: dst, single: single, files: map[string]*os.File{}}
	var err error
	if single {
		var f *os.File
		f, err = os.CreateTemp(dir, "."+filepath.Base(dst)+".shoal-*")
		if err == nil {
			o.tmp = f.Name()
			o.files[""] = f
		}
	} else {
		o.tmp, err = os.MkdirTemp(dir, "."+filepath.Base(dst)+".shoal-*")
	}
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	return o, nil
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

// commit syncs and closes every file and renames the result into place.
func (o *output) commit() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, f := range o.files {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("output: %w", err)
		}
	}
	o.files = nil
	if o.single {
		if err := os.Chmod(o.tmp, 0o644); err != nil {
			return fmt.Errorf("output: %w", err)
		}
	} else if err := os.Chmod(o.tmp, 0o755); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if err := os.Rename(o.tmp, o.dst); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	o.done = true
	if d, err := os.Open(filepath.Dir(o.dst)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// abort removes the temporary output unless it was committed.
func (o *output) abort() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return
	}
	o.done = true
	for _, f := range o.files {
		f.Close()
	}
	os.RemoveAll(o.tmp)
}
