package monitor

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"pipeline/pipeline"
)

func TestSuggestBalancesCosts(t *testing.T) {
	costs := []StageCost{
		{Name: "read", Seconds: 50e-6, CPU: true},
		{Name: "decode", Seconds: 1e-3, Parallel: true, CPU: true},
		{Name: "augment", Seconds: 2e-3, Parallel: true, CPU: true},
		{Name: "batch", Seconds: 20e-6, CPU: true},
		{Name: "sink", Seconds: 0.1e-3},
	}
	s := Suggest(costs, 16)
	// decode:augment should be about 1:2; 16 cores -> 5 or 6 decode, the rest augment.
	if d, a := s.Workers["decode"], s.Workers["augment"]; d+a != 16 || d < 5 || d > 6 {
		t.Fatalf("split %v", s.Workers)
	}
	// All 16 cores busy: 16 / 3.07ms per item.
	want := 16 / (50e-6 + 1e-3 + 2e-3 + 20e-6)
	if math.Abs(s.ItemsPerS-want)/want > 0.15 {
		t.Fatalf("predicted %.0f items/s, want about %.0f", s.ItemsPerS, want)
	}
}

func TestSuggestSerialBottleneck(t *testing.T) {
	costs := []StageCost{
		{Name: "decode", Seconds: 1e-3, Parallel: true, CPU: true},
		{Name: "augment", Seconds: 1e-3, Parallel: true, CPU: true},
		{Name: "sink", Seconds: 1e-2}, // a slow GPU step: 100 items/s at most
	}
	s := Suggest(costs, 8)
	if s.Bottleneck != "sink" || math.Abs(s.ItemsPerS-100) > 1e-6 {
		t.Fatalf("want the sink to limit at 100/s, got %+v", s)
	}
}

func TestDeltaAndBottleneck(t *testing.T) {
	prev := []pipeline.Snapshot{{Name: "decode", Workers: 2}, {Name: "augment", Workers: 2}}
	cur := []pipeline.Snapshot{
		{Name: "decode", Workers: 2, Out: 100, Busy: 400 * time.Millisecond, Blocked: 1500 * time.Millisecond},
		{Name: "augment", Workers: 2, Out: 100, Busy: 1900 * time.Millisecond, QueueLen: 1, QueueCap: 4},
	}
	s := Delta(prev, cur, time.Second)
	if s.Bottleneck != "augment" {
		t.Fatalf("bottleneck %q", s.Bottleneck)
	}
	d := s.Stages[0]
	if d.ItemsPerS != 100 || math.Abs(d.Busy-0.2) > 1e-9 || math.Abs(d.Blocked-0.75) > 1e-9 || s.Stages[1].Queue != 0.25 {
		t.Fatalf("sample %+v", s)
	}
}

func TestPlotWritesPNG(t *testing.T) {
	var samples []Sample
	for i := 0; i < 20; i++ {
		samples = append(samples, Sample{At: float64(i) / 4, Stages: []StageSample{
			{Name: "decode", ItemsPerS: 100 + float64(i), Queue: 0.5},
			{Name: "augment", ItemsPerS: 90, Queue: float64(i%5) / 5},
		}})
	}
	path := filepath.Join(t.TempDir(), "p.png")
	if err := Plot(path, samples); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width < 600 || cfg.Height < 400 {
		t.Fatalf("not a plot-sized PNG: %+v %v", cfg, err)
	}
	if err := Plot(path, samples[:1]); err == nil {
		t.Fatal("one sample is too few to plot")
	}
}
