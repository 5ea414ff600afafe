//go:build !unix

package o365mappingprocessor

import "time"

// cpuTime is not measured on this platform (the cpu-ns/record metric reads 0).
func cpuTime() time.Duration { return 0 }
