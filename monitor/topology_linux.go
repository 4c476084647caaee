package monitor

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// allowedCPUs lists the CPUs in the process's affinity mask (a container's cpuset, taskset).
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return firstCPUs(runtime.NumCPU())
	}
	var cpus []int
	for i := range len(set) * 64 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}
