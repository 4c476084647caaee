package main

import (
	"context"
	"runtime"
	"testing"
	"time"

	"pipeline/job"
	"pipeline/pipeline"
)

// --cores sizes the suggested split for another machine; it must not change what the run
// measured. Four decode workers busy for a second on the run's two cores (GOMAXPROCS), which
// gave 2s of CPU: the busy time is twice the working time whatever --cores says.
func TestProfileCoresFlagDoesNotChangeTheMeasuredCosts(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	report := func(cores int) profileReport {
		r := pipeline.NewRun(context.Background(), pipeline.Skip)
		read := r.Track("read", 1, nil, 0)
		read.Out.Store(100)
		dec := r.Track("decode", 4, nil, 0)
		dec.Parallel = true
		dec.Out.Store(100)
		dec.BusyNs.Store(int64(4 * time.Second))
		sum := &job.Summary{Seconds: 1, Emitted: 100, SamplesPerS: 100}
		return analyse(nil, sum, r, nil, 2*time.Second, 0, cores)
	}
	here, target := report(2), report(16)
	if here.CPUScale != 0.5 || target.CPUScale != 0.5 {
		t.Fatalf("cpu scale %.2f with --cores 2, %.2f with --cores 16; want 0.5 (4s busy, 2s of CPU on 2 cores)", here.CPUScale, target.CPUScale)
	}
	if here.Stages[1].CPUPerItem != 20 || target.Stages[1].CPUPerItem != 20 {
		t.Fatalf("decode cpu ms/item %.1f with --cores 2, %.1f with --cores 16; want 20", here.Stages[1].CPUPerItem, target.Stages[1].CPUPerItem)
	}
	if target.Cores != 16 || target.PredictedPerS <= here.PredictedPerS {
		t.Fatalf("--cores 16 predicts %.0f samples/s for %d cores, --cores 2 %.0f", target.PredictedPerS, target.Cores, here.PredictedPerS)
	}
}
