package store

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// openUnnamed opens a new, unnamed file in dir (O_TMPFILE) for a chunk's
// bytes: it has no name until linkUnnamed gives it its final one, so there
// is no temp name to create, rename away or clean up after a crash.
// ok is false where the kernel or file system does not support it.
func openUnnamed(dir string) (f *os.File, ok bool, err error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	switch {
	case err == nil:
		return os.NewFile(uintptr(fd), dir+"/(unnamed)"), true, nil
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EINVAL):
		return nil, false, nil
	default:
		return nil, true, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: err}
	}
}

// linkUnnamed gives the unnamed file f the name dst, failing if dst exists.
// It goes through /proc/self/fd, which needs no privilege (AT_EMPTY_PATH
// would need CAP_DAC_READ_SEARCH); ok is false when /proc is not there.
func linkUnnamed(f *os.File, dst string) (ok bool, err error) {
	src := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	err = unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, unix.ENOENT) {
		if _, serr := os.Stat(src); serr != nil {
			return false, nil // no /proc: link by name instead
		}
	}
	return true, &os.LinkError{Op: "link", Old: src, New: dst, Err: err}
}
