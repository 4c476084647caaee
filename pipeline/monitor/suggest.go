package monitor

import "math"

// StageCost is what one item costs a stage, measured over a profile run.
type StageCost struct {
	Name     string
	Seconds  float64 // worker time per item (CPU time for CPU-bound stages)
	Parallel bool    // the stage can run on several workers
	CPU      bool    // the stage's time is spent on this machine's cores (not a GPU)
}

// Split is a worker count per parallel stage and the throughput it should give.
type Split struct {
	Workers    map[string]int
	ItemsPerS  float64
	Bottleneck string // the stage that limits the predicted throughput ("cpu" if all cores are busy)
}

// Suggest finds the worker counts for the parallel stages that maximise throughput on cores
// CPU cores. A stage with w workers and a cost of c seconds an item passes at most w/c items a
// second; a serial stage 1/c; and all CPU stages together cannot use more than the cores.
func Suggest(costs []StageCost, cores int) Split {
	var parallel []StageCost
	serialCap, serialName := math.Inf(1), ""
	cpuPerItem := 0.0
	for _, c := range costs {
		if c.CPU {
			cpuPerItem += c.Seconds
		}
		if c.Parallel {
			parallel = append(parallel, c)
			continue
		}
		if c.Seconds > 0 && 1/c.Seconds < serialCap {
			serialCap, serialName = 1/c.Seconds, c.Name
		}
	}
	best := Split{ItemsPerS: -1}
	counts := make([]int, len(parallel))
	var try func(i, left int)
	try = func(i, left int) {
		if i == len(parallel)-1 {
			counts[i] = left
			rate, name := serialCap, serialName
			for k, p := range parallel {
				if p.Seconds > 0 {
					if r := float64(counts[k]) / p.Seconds; r < rate {
						rate, name = r, p.Name
					}
				}
			}
			if cpuPerItem > 0 {
				if r := float64(cores) / cpuPerItem; r < rate {
					rate, name = r, "cpu"
				}
			}
			if rate > best.ItemsPerS+1e-9 {
				best = Split{Workers: map[string]int{}, ItemsPerS: rate, Bottleneck: name}
				for k, p := range parallel {
					best.Workers[p.Name] = counts[k]
				}
			}
			return
		}
		for n := 1; n <= left-(len(parallel)-1-i); n++ {
			counts[i] = n
			try(i+1, left-n)
		}
	}
	if len(parallel) == 0 {
		return Split{Workers: map[string]int{}, ItemsPerS: serialCap, Bottleneck: serialName}
	}
	if cores < len(parallel) {
		cores = len(parallel)
	}
	try(0, cores)
	return best
}
