//go:build !unix

package agent

import "os"

// flockNB does nothing where flock is unavailable: two gets of the same OUT
// at once are then not kept apart.
func flockNB(*os.File) error { return nil }
