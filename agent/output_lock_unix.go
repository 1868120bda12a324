//go:build unix

package agent

import (
	"os"
	"syscall"
)

// flockNB takes an exclusive flock on f without waiting. The kernel drops it
// when f is closed or the process dies, so a killed get never blocks a rerun.
func flockNB(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
