package monitor

import "math"

// StageCost is what one item costs a stage, measured over a profile run.
type StageCost struct {
	Name     string
	Seconds  float64 // worker time per item: what one worker spends on one item
	Parallel bool    // the stage can run on several workers
}

// Split is a worker count per stage and the throughput it should give.
type Split struct {
	Workers    map[string]int // every stage; serial stages have 1
	ItemsPerS  float64
	Bottleneck string // the stage that limits the predicted throughput, or "cpu" when all cores are busy
}

// MaxWorkersPerCore bounds the goroutines Suggest hands out: a stage that mostly waits (a
// disk, a sleep) could use many, but each worker holds items in flight and so memory.
const MaxWorkersPerCore = 4

// Headroom multiplies the workers a stage needs in a perfectly smooth flow (rate x cost per
// item). Items do not come evenly and hand-offs take time: on 2 cores the smooth-flow split of
// 1 decode and 1 augment worker made 448-474 MoCo v2 samples/s, 4 and 3 made 626-642
// (docs/profiling.md). Too many workers cost only memory in flight.
const Headroom = 3

// Suggest sizes the parallel stages for cores CPU cores, given each stage's cost per item and
// the CPU time a whole item costs the process (cpuPerItem, measured: it includes the garbage
// collector and excludes time spent waiting). The machine passes at most cores/cpuPerItem items
// a second and a serial stage 1/Seconds; each parallel stage then gets Headroom times the
// workers that would keep up with that rate in a smooth flow (w workers pass w/Seconds items a
// second). Workers may outnumber the cores: a worker that waits for a core costs nothing, one
// that is missing loses throughput.
// When more than MaxWorkersPerCore*cores workers would be needed, that many are shared out to
// balance the stages.
func Suggest(costs []StageCost, cpuPerItem float64, cores int) Split {
	cores = max(cores, 1)
	rate, limit := math.Inf(1), ""
	if cpuPerItem > 0 {
		rate, limit = float64(cores)/cpuPerItem, "cpu"
	}
	workers := map[string]int{}
	var parallel []StageCost
	for _, c := range costs {
		if c.Parallel {
			parallel = append(parallel, c)
			continue
		}
		workers[c.Name] = 1
		if c.Seconds > 0 && 1/c.Seconds < rate {
			rate, limit = 1/c.Seconds, c.Name
		}
	}
	counts := make([]int, len(parallel))
	total := 0
	for i, p := range parallel {
		counts[i] = 1
		if !math.IsInf(rate, 1) {
			// The epsilon keeps an exact fit (3.0000001 workers from rounding) at 3.
			counts[i] = max(1, int(math.Ceil(Headroom*rate*p.Seconds-1e-6)))
		}
		total += counts[i]
	}
	if cap := MaxWorkersPerCore * cores; total > cap {
		counts = balance(parallel, max(cap, len(parallel)))
	}
	for i, p := range parallel {
		workers[p.Name] = counts[i]
		if p.Seconds > 0 {
			if r := float64(counts[i]) / p.Seconds; r < rate {
				rate, limit = r, p.Name
			}
		}
	}
	if math.IsInf(rate, 1) {
		rate = 0
	}
	return Split{Workers: workers, ItemsPerS: rate, Bottleneck: limit}
}

// balance shares n workers out over the stages so that the slowest of them is as fast as it
// can be: each worker in turn goes to the stage with the lowest rate.
func balance(stages []StageCost, n int) []int {
	counts := make([]int, len(stages))
	for i := range counts {
		counts[i] = 1
	}
	for left := n - len(stages); left > 0; left-- {
		slowest, slowestRate := 0, math.Inf(1)
		for i, s := range stages {
			if s.Seconds <= 0 {
				continue
			}
			if r := float64(counts[i]) / s.Seconds; r < slowestRate {
				slowest, slowestRate = i, r
			}
		}
		counts[slowest]++
	}
	return counts
}
