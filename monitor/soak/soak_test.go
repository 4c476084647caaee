package soak

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"pipeline/internal/repo"
	"pipeline/job"
	"pipeline/pipeline"
	"pipeline/pipeline/config"
	"pipeline/sink/null"
)

func TestRSSAndTake(t *testing.T) {
	rss, err := RSS()
	if err != nil {
		t.Skipf("no /proc/self/status here: %v", err)
	}
	s, err := Take(time.Now(), 7)
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 || s.RSS < 1<<20 || s.HeapAlloc == 0 || s.Goroutines < 1 || s.Progress != 7 {
		t.Fatalf("implausible sample: rss %d, %+v", rss, s)
	}
}

func TestJudge(t *testing.T) {
	series := func(values ...float64) []Sample {
		var s []Sample
		for _, v := range values {
			s = append(s, Sample{RSS: int64(v)})
		}
		return s
	}
	rss := func(s Sample) float64 { return float64(s.RSS) }
	// A saw-tooth with the same peaks is flat; the warm-up is not judged.
	v, err := Judge(series(1, 50, 10, 12, 10, 12, 10, 12, 10, 12, 10, 12), 2, "rss", rss, 0.1)
	if err != nil || !v.Flat || v.FirstMax != 12 || v.LastMax != 12 {
		t.Fatalf("flat series: %v, %v", v, err)
	}
	// A slow climb is a leak.
	v, err = Judge(series(10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15), 0, "rss", rss, 0.15)
	if err != nil || v.Flat || v.FirstMax != 11 || v.LastMax != 15 {
		t.Fatalf("growing series: %v, %v", v, err)
	}
	if _, err := Judge(series(1, 2, 3), 0, "rss", rss, 0.1); err == nil {
		t.Fatal("three samples cannot be judged")
	}
}

func TestRecorderStops(t *testing.T) {
	if _, err := RSS(); err != nil {
		t.Skipf("no /proc/self/status here: %v", err)
	}
	before := runtime.NumGoroutine()
	r := Record(context.Background(), time.Millisecond, func() int64 { return 1 })
	time.Sleep(20 * time.Millisecond)
	samples, err := r.Stop()
	if err != nil || len(samples) == 0 || samples[0].Progress != 1 {
		t.Fatalf("%d samples, %v", len(samples), err)
	}
	// The goroutine has closed its done channel; give it a moment to be gone.
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 100 {
			t.Fatalf("the recorder's goroutine outlived Stop: %d goroutines before, %d after", before, runtime.NumGoroutine())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSoak streams the bundled imagenet-like shards through MoCo v2 views into the null sink
// for PIPELINE_SOAK_DURATION (default 3m), epoch after epoch, sampling the process every
// second, and fails if resident memory or the heap grows by more than 15% between the first
// and the last quarter (after a warm-up of a sixth of the run) or if goroutines grow at all. Off unless
// PIPELINE_SOAK=1:
//
//	PIPELINE_SOAK=1 go test -run TestSoak -v -timeout 30m ./pipeline/soak
func TestSoak(t *testing.T) {
	if os.Getenv("PIPELINE_SOAK") != "1" {
		t.Skip("a soak run takes minutes: set PIPELINE_SOAK=1 (and PIPELINE_SOAK_DURATION, default 3m)")
	}
	duration := 3 * time.Minute
	if d := os.Getenv("PIPELINE_SOAK_DURATION"); d != "" {
		var err error
		if duration, err = time.ParseDuration(d); err != nil {
			t.Fatalf("PIPELINE_SOAK_DURATION: %v", err)
		}
	}
	yaml := fmt.Sprintf(`source:
  shards: %q
  shuffle_buffer: 32
  readers: 2
epochs: 1000000
seed: 1
views: mocov2
batch:
  size: 32
memory_budget: 512MiB
`, filepath.Join(repo.TestRoot(t), "testdata/imagenet-like/train-{000000..000002}.tar"))
	cfg, err := config.Parse("soak.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	j, err := job.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	snk := null.New(null.Config{})
	var rec *Recorder
	sum, err := j.Run(context.Background(), job.Options{Sink: snk, Duration: duration,
		OnStart: func(r *pipeline.Run, b *pipeline.Budget) {
			rec = Record(r.Context(), time.Second, func() int64 {
				return snk.Summary()["samples"].(int64)
			})
		}})
	if err != nil {
		t.Fatal(err)
	}
	samples, err := rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Read != sum.Emitted+sum.Skipped.Total {
		t.Fatalf("read %d != emitted %d + skipped %d", sum.Read, sum.Emitted, sum.Skipped.Total)
	}
	epochs := float64(sum.Read) / 50
	t.Logf("%v: %d samples (%.0f epochs of 50) at %.0f samples/s, %d batches, memory budget peak %s of %s",
		duration, sum.Emitted, epochs, sum.SamplesPerS, sum.Batches, config.ByteSize(sum.MemoryPeak), config.ByteSize(sum.MemoryBudget))
	var table strings.Builder
	table.WriteString("elapsed_s  samples  rss_MiB  heap_alloc_MiB  heap_inuse_MiB  goroutines\n")
	for i, s := range samples {
		if i%max(1, len(samples)/12) == 0 || i == len(samples)-1 {
			fmt.Fprintf(&table, "%9.0f  %7d  %7.1f  %14.1f  %14.1f  %10d\n", s.Elapsed.Seconds(), s.Progress,
				mib(s.RSS), mib(int64(s.HeapAlloc)), mib(int64(s.HeapInuse)), s.Goroutines)
		}
	}
	t.Logf("samples over time:\n%s", table.String())
	// Warm-up: the first sixth (30s of 3 minutes), while the pools, the heap's GC target and
	// the runtime's page cache settle.
	warmup := len(samples) / 6
	checks := []struct {
		metric    string
		value     func(Sample) float64
		tolerance float64
	}{
		{"rss", func(s Sample) float64 { return float64(s.RSS) }, 0.15},
		{"heap_alloc", func(s Sample) float64 { return float64(s.HeapAlloc) }, 0.15},
		{"heap_inuse", func(s Sample) float64 { return float64(s.HeapInuse) }, 0.15},
		{"goroutines", func(s Sample) float64 { return float64(s.Goroutines) }, 0},
	}
	for _, c := range checks {
		v, err := Judge(samples, warmup, c.metric, c.value, c.tolerance)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(v)
		if !v.Flat {
			t.Errorf("%v", v)
		}
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
