//go:build !unix

package store

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir only holds Dir/.lock open where flock is unavailable: no exclusion.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	return f, nil
}

// InUse cannot tell without flock: it reports false, so callers open the
// store themselves.
func InUse(dir string) bool { return false }
