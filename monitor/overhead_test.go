package monitor

import (
	"context"
	"testing"
	"time"

	"pipeline/job"
	"pipeline/pipeline"
	"pipeline/pipeline/config"
	"pipeline/sink/null"
)

// BenchmarkTimingOverhead measures what profiling costs a run: the runtime's per-item timing
// (clock reads, busy/starved/blocked counters, latency histograms) and the monitor sampling
// every stage's counters, against the same job with timing off and no monitor. The job is
// cheap per sample (small synthetic JPEGs, 64-pixel views), so the overhead shows more than
// it would on ImageNet-size images. One op is three runs of 256 samples, one per mode.
func BenchmarkTimingOverhead(b *testing.B) {
	const yaml = `source:
  synthetic: {count: 64, width: 128, height: 96}
epochs: 1000000
views: {recipe: mocov2, size: 64}
batch: {size: 32}
workers: {decode: 1, augment: 2}
memory_budget: 256MiB
`
	cfg, err := config.Parse("bench.yaml", []byte(yaml), nil)
	if err != nil {
		b.Fatal(err)
	}
	j, err := job.Build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	const samples = 256
	// The machine is shared and its load changes by the second: the three modes take turns
	// within every op (in a rotating order), so that they see the same load, and the ratios
	// are what to read. Wall-clock throughput still moves with the other work on the machine;
	// the process's CPU time per sample does not, and on a CPU-bound pipeline throughput is
	// cores over it: its ratios are the steadier measure of the overhead.
	modes := []struct {
		name           string
		timing, sample bool
	}{{"off", false, false}, {"timing", true, false}, {"timing+monitor", true, true}}
	elapsed := make([]time.Duration, len(modes))
	cpu := make([]time.Duration, len(modes))
	round := 0
	for b.Loop() {
		for k := range modes {
			m := (round + k) % len(modes)
			opt := job.Options{Sink: null.New(null.Config{}), MaxSamples: samples, NoTiming: !modes[m].timing}
			var mon *Monitor
			if modes[m].sample {
				opt.OnStart = func(r *pipeline.Run, bud *pipeline.Budget) {
					mon = Start(context.Background(), r, bud, 100*time.Millisecond, nil)
				}
			}
			cpu0 := ProcessCPU()
			sum, err := j.Run(context.Background(), opt)
			if err != nil {
				b.Fatal(err)
			}
			if mon != nil {
				mon.Stop()
			}
			cpu[m] += ProcessCPU() - cpu0
			elapsed[m] += time.Duration(sum.Seconds * float64(time.Second))
		}
		round++
	}
	rate := func(m int) float64 { return float64(b.N*samples) / elapsed[m].Seconds() }
	b.ReportMetric(rate(0), "off-samples/s")
	b.ReportMetric(100*(1-rate(1)/rate(0)), "timing-wall-%")
	b.ReportMetric(100*(1-rate(2)/rate(0)), "timing+monitor-wall-%")
	b.ReportMetric(float64(cpu[0].Microseconds())/float64(b.N*samples), "off-cpu-µs/sample")
	b.ReportMetric(100*(float64(cpu[1])/float64(cpu[0])-1), "timing-cpu-%")
	b.ReportMetric(100*(float64(cpu[2])/float64(cpu[0])-1), "timing+monitor-cpu-%")
}

// BenchmarkRuntimePerItem is the runtime's own cost per item through read -> decode ->
// augment -> batch with stages that do nothing, timed and untimed: the difference is what
// the timing adds to every sample, to set against a sample's cost (milliseconds).
func BenchmarkRuntimePerItem(b *testing.B) {
	for _, timed := range []bool{false, true} {
		name := "untimed"
		if timed {
			name = "timed"
		}
		b.Run(name, func(b *testing.B) {
			r := pipeline.NewRun(context.Background(), pipeline.Skip)
			if !timed {
				r.DisableTiming()
			}
			nothing := func(ctx context.Context, it *pipeline.Item) error { return nil }
			read := r.Source("read", &countSource{n: b.N}, 64, nil)
			dec := r.Stage("decode", 1, 64, read, nothing)
			aug := r.Stage("augment", 1, 64, dec, nothing)
			r.Consume("batch", aug, func(ctx context.Context, it *pipeline.Item) error { return nil }, nil)
			b.ResetTimer()
			if err := r.Wait(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkTimingPerStageItem is what the runtime's timing adds for one item in one stage:
// the worker's busy clock started and stopped around the stage function (two clock reads,
// two atomic stores, a counter) and a histogram observation; the starved and blocked clocks
// only run when the worker waits anyway.
func BenchmarkTimingPerStageItem(b *testing.B) {
	st := pipeline.NewRun(context.Background(), pipeline.Skip).Track("stage", 1, nil, 0)
	for b.Loop() {
		t0 := st.Begin(0)
		st.Latency.Observe(st.End(0, t0))
	}
}

// BenchmarkMonitorSample is one tick of the monitor on a five-stage run: a snapshot of every
// stage (histogram quantiles included) and the deltas.
func BenchmarkMonitorSample(b *testing.B) {
	r := pipeline.NewRun(context.Background(), pipeline.Skip)
	for _, name := range []string{"read", "decode", "augment", "batch", "sink"} {
		st := r.Track(name, 2, func() int { return 3 }, 8)
		for i := range 1000 {
			st.Latency.Observe(time.Duration(i) * time.Microsecond)
		}
	}
	prev := snapshots(r)
	for b.Loop() {
		cur := snapshots(r)
		_ = Delta(prev, cur, time.Second)
		prev = cur
	}
}
