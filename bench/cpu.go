package bench

import "time"

// startCPU starts measuring a stretch of the benchmark: the returned func
// gives the process's CPU time over it and its wall time. The origin, the
// tracker, every viewer's peer and player run in this one process, so CPU ÷
// wall is the cores the run kept busy: on a small machine shared with other
// work, a run that needs more than it gets is slowed by the machine, not by
// the network it models.
func startCPU() func() (cpu, wall time.Duration) {
	cpu0, t0 := processCPU(), time.Now()
	return func() (time.Duration, time.Duration) { return processCPU() - cpu0, time.Since(t0) }
}
