//go:build !linux

package monitor

import "runtime"

func allowedCPUs() []int { return firstCPUs(runtime.NumCPU()) }
