//go:build !unix

// Package cputime reads the CPU time the process has used, for benchmarks whose figures must not
// depend on what else the machine runs (wall-clock time does).
package cputime

import "time"

// Process is not measured on this platform: it reads 0.
func Process() time.Duration { return 0 }
