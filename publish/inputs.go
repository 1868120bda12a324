package publish

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/shoal-cdn/shoal/manifest"
)

// input is one file to publish: where it is on disk and its path in the content.
type input struct {
	src  string
	path string
	size int64
}

// collect expands the command-line paths into files. A single directory
// publishes its contents (paths relative to it); otherwise each argument
// contributes under its base name, directories recursively. Symlinks to
// files are followed; anything but regular files and directories is an error.
func collect(paths []string) ([]input, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: nothing to publish: give one or more files or directories", ErrInput)
	}
	var out []input
	add := func(src, rel string) error {
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInput, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%w: %s: not a regular file", ErrInput, src)
		}
		rel = filepath.ToSlash(rel)
		if err := manifest.CheckPath(rel); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInput, src, err)
		}
		out = append(out, input{src: src, path: rel, size: st.Size()})
		return nil
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInput, err)
		}
		if !st.IsDir() {
			if err := add(p, filepath.Base(p)); err != nil {
				return nil, err
			}
			continue
		}
		prefix := ""
		if len(paths) > 1 {
			prefix = filepath.Base(filepath.Clean(p))
		}
		err = filepath.WalkDir(p, func(src string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("%w: %v", ErrInput, err)
			}
			if d.IsDir() {
				return nil
			}
			rel, err := filepath.Rel(p, src)
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink != 0 {
				if st, err := os.Stat(src); err == nil && st.IsDir() {
					return fmt.Errorf("%w: %s: symlinked directories are not followed", ErrInput, src)
				}
			}
			return add(src, filepath.Join(prefix, rel))
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	for i := 1; i < len(out); i++ {
		if out[i].path == out[i-1].path {
			return nil, fmt.Errorf("%w: %s and %s both publish as %q", ErrInput, out[i-1].src, out[i].src, out[i].path)
		}
	}
	return out, nil
}
