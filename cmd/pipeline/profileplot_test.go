package main

import (
	"math"
	"testing"
	"time"

	"pipeline/monitor"
)

// The picture shows the report's own numbers: the stages in flow order with their time split,
// workers today and suggested, the sink's items counted as batches, op shares, and a smoothed
// queue only for the stages that have one.
func TestProfilePictureDrawsTheReportsNumbers(t *testing.T) {
	rep := profileReport{
		Config: "examples/train.yaml", Seconds: 4, Cores: 2, SamplesPerS: 400, Bottleneck: "augment",
		PredictedPerS: 520, PredictedLimit: "cpu",
		Stages: []monitor.StageProfile{
			{Name: "read", Workers: 1, Out: 1600, ItemsPerS: 400, Busy: 0.05, Blocked: 0.9},
			{Name: "augment", Workers: 2, Out: 1600, ItemsPerS: 400, Busy: 0.95, Starved: 0.03},
			{Name: "sink", Workers: 1, Out: 100, ItemsPerS: 25, Busy: 0.01, Starved: 0.98},
		},
		Workers:          map[string]int{"read": 1, "augment": 2, "sink": 1},
		SuggestedWorkers: map[string]int{"read": 1, "augment": 5, "sink": 1},
		Ops:              []profileOp{{Busy: 0.4}, {Busy: 0.1}},
	}
	rep.Ops[0].Name, rep.Ops[0].Share = "random_resized_crop", 0.8
	rep.Ops[1].Name, rep.Ops[1].Share = "hflip", 0.2
	for i := range 16 {
		full := float64(i % 2) // flickers between empty and full
		rep.Timeline = append(rep.Timeline, monitor.Sample{At: float64(i+1) * 0.25, Stages: []monitor.StageSample{
			{Name: "read", Queue: full, QueueCap: 8}, {Name: "augment", Queue: 0.5, QueueCap: 8}, {Name: "sink"}}})
	}
	p := profilePicture(rep, 250*time.Millisecond)
	if p.Bottleneck != "augment" || p.SamplesPerS != 400 || p.SuggestedPerS != 520 || p.SuggestedLimit != "cpu" || p.Cores != 2 {
		t.Fatalf("header figures %+v", p)
	}
	if len(p.Stages) != 3 || p.Stages[0].Name != "read" || p.Stages[1].Busy != 0.95 || p.Stages[0].Blocked != 0.9 {
		t.Fatalf("stages %+v", p.Stages)
	}
	if a := p.Stages[1]; a.Workers != 2 || a.Suggested != 5 || a.Unit != "samples" {
		t.Fatalf("augment %+v, want 2 workers today, 5 suggested, items counted as samples", a)
	}
	if p.Stages[2].Unit != "batches" || p.Stages[0].Unit != "samples" {
		t.Fatalf("units %q %q, want the sink's items counted as batches", p.Stages[0].Unit, p.Stages[2].Unit)
	}
	if len(p.Ops) != 2 || p.Ops[0].Name != "random_resized_crop" || p.Ops[0].Share != 0.8 {
		t.Fatalf("ops %+v", p.Ops)
	}
	if len(p.Queues) != 2 || p.Queues[0].Stage != "read" || p.Queues[1].Stage != "augment" {
		t.Fatalf("queues %+v, want read and augment (the sink has no output queue)", p.Queues)
	}
	// 2 s over 0.25 s samples is 8 samples: a 0/1 flicker averages to one half once the window is full.
	if got := p.Queues[0].Filled[15]; math.Abs(got-0.5) > 1e-9 || len(p.Queues[0].Seconds) != 16 {
		t.Fatalf("smoothed read queue ends at %.3f, want 0.5", got)
	}
	rep.Timeline = rep.Timeline[:minQueueSamples-1]
	if p := profilePicture(rep, 250*time.Millisecond); len(p.Queues) != 0 {
		t.Fatalf("%d queue series from a %d-sample timeline", len(p.Queues), len(rep.Timeline))
	}
}
