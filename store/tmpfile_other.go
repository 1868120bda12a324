//go:build !linux

package store

import "os"

// openUnnamed is Linux's O_TMPFILE; elsewhere chunks are written under a
// temp name and renamed.
func openUnnamed(string) (*os.File, bool, error) { return nil, false, nil }

func linkUnnamed(*os.File, string) (bool, error) { return false, nil }
