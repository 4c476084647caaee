package monitor

import (
	"context"
	"io"
	"math"
	"testing"
	"time"

	"pipeline/pipeline"
)

// countSource yields n empty items.
type countSource struct{ n, i int }

func (s *countSource) Next(ctx context.Context) (*pipeline.Item, error) {
	if s.i >= s.n {
		return nil, io.EOF
	}
	s.i++
	return &pipeline.Item{Meta: pipeline.Meta{Index: int64(s.i)}}, nil
}

// sleepPipeline runs n items through read -> decode -> augment -> batch, where decode and
// augment sleep a fixed time per item: a bottleneck that does not depend on the machine's load.
// It returns the run's totals as `pipeline profile` measures them.
func sleepPipeline(t *testing.T, n, decodeWorkers, augmentWorkers int, decodeCost, augmentCost time.Duration) RunTotals {
	t.Helper()
	r := pipeline.NewRun(context.Background(), pipeline.Skip)
	sleep := func(d time.Duration) pipeline.StageFunc {
		return func(ctx context.Context, it *pipeline.Item) error { time.Sleep(d); return nil }
	}
	read := r.Source("read", &countSource{n: n}, 8, nil)
	dec := r.Stage("decode", decodeWorkers, 8, read, sleep(decodeCost))
	aug := r.Stage("augment", augmentWorkers, 8, dec, sleep(augmentCost))
	var samples int64
	r.Consume("batch", aug, func(ctx context.Context, it *pipeline.Item) error { samples++; return nil }, nil)
	cpu0, wait0, start := ProcessCPU(), CoreWait(), time.Now()
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	tot := RunTotals{Elapsed: time.Since(start), CPU: ProcessCPU() - cpu0, CoreWait: CoreWait() - wait0, Samples: samples, Cores: 2}
	for _, s := range r.Stages() {
		tot.Stages = append(tot.Stages, s.Snapshot())
	}
	return tot
}

// With too many decode workers and one slow augment worker, the profile must name augment,
// give it the larger share of workers, and that split must be faster when run.
func TestAnalyseFindsTheSlowStageAndItsSplitIsFaster(t *testing.T) {
	const n = 120
	decodeCost, augmentCost := 500*time.Microsecond, 4*time.Millisecond
	before := sleepPipeline(t, n, 3, 1, decodeCost, augmentCost)
	a := Analyse(before, nil)
	if a.Bottleneck != "augment" {
		t.Fatalf("bottleneck %q, want augment; stages %+v", a.Bottleneck, a.Stages)
	}
	dec, aug := a.Split.Workers["decode"], a.Split.Workers["augment"]
	if aug < 2*dec || aug < 4 || a.Split.Workers["read"] != 1 {
		t.Fatalf("suggested %v: augment should get most workers", a.Split.Workers)
	}
	after := sleepPipeline(t, n, dec, aug, decodeCost, augmentCost)
	rateBefore := float64(before.Samples) / before.Elapsed.Seconds()
	rateAfter := float64(after.Samples) / after.Elapsed.Seconds()
	// One augment worker passes at most 250/s; the suggested split (at least 4) at least 1000/s.
	if rateAfter < 2*rateBefore {
		t.Fatalf("suggested split %v: %.0f samples/s, before (decode 3, augment 1) %.0f", a.Split.Workers, rateAfter, rateBefore)
	}
	t.Logf("decode 3, augment 1: %.0f/s; suggested %v: %.0f/s (predicted %.0f)", rateBefore, a.Split.Workers, rateAfter, a.Split.ItemsPerS)
}

func TestAnalyseScalesBusyTimeWhenWorkersOutnumberCores(t *testing.T) {
	// Four workers busy the whole second on two cores that gave 1s of CPU in all: each item
	// cost a quarter of its wall time.
	tot := RunTotals{Elapsed: time.Second, CPU: time.Second, Samples: 100, Cores: 2, Stages: []pipeline.Snapshot{
		{Name: "decode", Workers: 2, Parallel: true, Out: 100, Busy: 2 * time.Second},
		{Name: "augment", Workers: 2, Parallel: true, Out: 100, Busy: 2 * time.Second},
	}}
	a := Analyse(tot, nil)
	if a.CPUScale != 0.25 || a.Stages[0].CPUPerItem != 5 || a.CPUPerItem != 10 {
		t.Fatalf("scale %.2f, decode %.2f ms/item, process %.2f ms/sample; want 0.25, 5, 10", a.CPUScale, a.Stages[0].CPUPerItem, a.CPUPerItem)
	}
	if a.Stages[0].Busy != 1 || a.Stages[1].ItemsPerS != 100 {
		t.Fatalf("stages %+v", a.Stages)
	}
	// 2 cores at 10 ms a sample: 200/s, which takes one worker per stage in a smooth flow,
	// Headroom with the headroom.
	if a.Split.ItemsPerS != 200 || a.Split.Workers["decode"] != Headroom || a.Split.Workers["augment"] != Headroom || a.Split.Bottleneck != "cpu" {
		t.Fatalf("split %+v", a.Split)
	}
}

func TestAnalyseTakesOutTheWaitForACore(t *testing.T) {
	// One worker per stage on two cores, busy 1.5s in a second, of which the threads waited
	// 0.75s for a core (other work on the machine): the stages cost half their busy time.
	tot := RunTotals{Elapsed: time.Second, CPU: 700 * time.Millisecond, CoreWait: 750 * time.Millisecond, Samples: 100, Cores: 2,
		Stages: []pipeline.Snapshot{
			{Name: "decode", Workers: 1, Parallel: true, Out: 100, Busy: 500 * time.Millisecond},
			{Name: "augment", Workers: 1, Parallel: true, Out: 100, Busy: time.Second},
		}}
	a := Analyse(tot, nil)
	if a.CPUScale != 0.5 || a.Stages[1].CPUPerItem != 5 || a.Bottleneck != "augment" {
		t.Fatalf("scale %.2f, augment %.2f ms/item, bottleneck %s; want 0.5, 5, augment", a.CPUScale, a.Stages[1].CPUPerItem, a.Bottleneck)
	}
	// More waiting than busy time must not make the costs smaller than the CPU time used.
	tot.CoreWait = 10 * time.Second
	if a := Analyse(tot, nil); math.Abs(a.CPUScale-0.7/1.5) > 1e-9 {
		t.Fatalf("scale %.3f, want CPU/busy = %.3f", a.CPUScale, 0.7/1.5)
	}
}
