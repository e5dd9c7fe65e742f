//go:build !unix

package sqlite

import "time"

// cpuTime is not measured on this platform; benchmarks then omit cpu-ms/op.
func cpuTime() time.Duration { return 0 }
