package monitor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"pipeline/pipeline"
)

// RunTotals is what a profile run measured: every stage's counters at the end, how long the
// run took, and the CPU time the process used meanwhile.
type RunTotals struct {
	Stages  []pipeline.Snapshot
	Elapsed time.Duration
	CPU     time.Duration // user + system time of the whole process over the run
	// CoreWait is the time the process's threads spent ready to run but waiting for a core
	// (the machine busy with other work), over the run; 0 where unknown.
	CoreWait time.Duration
	Samples  int64 // samples that came out of the pipeline (a batch stage's item is a batch)
	Cores    int   // cores the pipeline may use (GOMAXPROCS)
	// SplitCores is the cores to size the suggested split for (`profile --cores`); 0: Cores.
	// The run's own cores, not these, say whether its workers outnumbered the cores.
	SplitCores int
}

// StageProfile is one stage over a whole run.
type StageProfile struct {
	Name       string  `json:"name"`
	Workers    int     `json:"workers"`
	Out        int64   `json:"out"`
	ItemsPerS  float64 `json:"items_per_s"`
	Busy       float64 `json:"busy"`    // fraction of worker time spent working
	Starved    float64 `json:"starved"` // fraction waiting for input
	Blocked    float64 `json:"blocked"` // fraction waiting on the next stage
	Queue      float64 `json:"queue"`   // mean output-queue occupancy over the timeline, 0..1
	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyP99 float64 `json:"latency_p99_ms"`
	// CPUPerItem is the worker time one item costs the stage, in ms, less the time spent
	// waiting for a core when the workers outnumbered the cores (see Analysis.CPUScale).
	CPUPerItem float64 `json:"cpu_ms_per_item"`
}

// Analysis is where a run's time went and how to size it better.
type Analysis struct {
	Stages     []StageProfile
	Bottleneck string  // the busiest stage
	CPUScale   float64 // busy time to working time: below 1 when stages waited for a core
	CPUPerItem float64 // process CPU time per sample, in ms
	Split      Split   // suggested workers and predicted samples/s
}

// Analyse turns a run's totals (and its sampled timeline, for queue occupancy) into per-stage
// fractions and costs, names the bottleneck and suggests a worker split for t.SplitCores cores
// (t.Cores if 0).
//
// Busy time is wall time, and part of it may have been spent waiting for a core rather than
// working. When the stages were busy for longer than the cores could run them (more workers
// than cores), every stage's busy time is scaled down by the same factor so that together
// they add up to the CPU time used. Otherwise the time the threads waited for a core while
// the machine ran other work (t.CoreWait) is taken out, again in proportion. What is left
// keeps the time a stage waits on something else than a core (a disk, a device): its real
// cost. The machine-wide limit uses the measured CPU time per sample.
func Analyse(t RunTotals, timeline []Sample) Analysis {
	a := Analysis{CPUScale: 1}
	secs := t.Elapsed.Seconds()
	cores := max(t.Cores, 1)
	var busy time.Duration
	for _, s := range t.Stages {
		busy += s.Busy
	}
	switch avail := time.Duration(cores) * t.Elapsed; {
	case busy <= 0:
	case busy > avail && t.CPU > 0 && t.CPU < busy:
		a.CPUScale = float64(t.CPU) / float64(busy)
	case t.CoreWait > 0:
		// Never below what the CPU time alone would give.
		working := max(busy-t.CoreWait, min(t.CPU, busy))
		a.CPUScale = float64(working) / float64(busy)
	}
	if t.Samples > 0 {
		a.CPUPerItem = t.CPU.Seconds() * 1e3 / float64(t.Samples)
	}
	meanQueue := queueMeans(timeline)
	var costs []StageCost
	for _, s := range t.Stages {
		p := StageProfile{Name: s.Name, Workers: s.Workers, Out: s.Out, Queue: meanQueue[s.Name],
			LatencyP50: ms(s.LatencyP50), LatencyP99: ms(s.LatencyP99)}
		if secs > 0 {
			total := float64(t.Elapsed) * float64(max(s.Workers, 1))
			p.ItemsPerS = float64(s.Out) / secs
			p.Busy = clamp01(float64(s.Busy) / total)
			p.Starved = clamp01(float64(s.Starved) / total)
			p.Blocked = clamp01(float64(s.Blocked) / total)
		}
		perItem := 0.0
		if s.Out > 0 {
			perItem = s.Busy.Seconds() / float64(s.Out) * a.CPUScale
		}
		p.CPUPerItem = perItem * 1e3
		a.Stages = append(a.Stages, p)
		// Costs for the suggestion are per sample: the sink's items are batches.
		perSample := perItem
		if t.Samples > 0 {
			perSample = s.Busy.Seconds() * a.CPUScale / float64(t.Samples)
		}
		costs = append(costs, StageCost{Name: s.Name, Seconds: perSample, Parallel: s.Parallel})
	}
	a.Bottleneck = busiest(a.Stages)
	splitCores := cores
	if t.SplitCores > 0 {
		splitCores = t.SplitCores
	}
	a.Split = Suggest(costs, a.CPUPerItem/1e3, splitCores)
	return a
}

func busiest(stages []StageProfile) string {
	var samples []StageSample
	for _, s := range stages {
		samples = append(samples, StageSample{Name: s.Name, Busy: s.Busy})
	}
	return Bottleneck(samples)
}

func queueMeans(timeline []Sample) map[string]float64 {
	out := map[string]float64{}
	for _, t := range timeline {
		for _, s := range t.Stages {
			out[s.Name] += s.Queue / float64(len(timeline))
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// CoreWait is the time this process's threads have spent waiting for a core so far, from
// Linux's per-thread scheduler statistics; 0 elsewhere.
func CoreWait() time.Duration {
	tasks, err := filepath.Glob("/proc/self/task/*/schedstat")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the thread ended
		}
		// "<ns on a core> <ns waiting for one> <time slices>"
		if f := strings.Fields(string(b)); len(f) >= 2 {
			if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				total += time.Duration(ns)
			}
		}
	}
	return total
}

// ProcessCPU is the CPU time this process has used so far, user and system.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
