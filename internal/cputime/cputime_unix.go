//go:build unix

// Package cputime reads the CPU time the process has used, for benchmarks whose figures must not
// depend on what else the machine runs (wall-clock time does).
package cputime

import (
	"syscall"
	"time"
)

// Process is the CPU time (user + system) the process has used; 0 if it cannot be read.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
