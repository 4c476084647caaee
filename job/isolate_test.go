package job

import (
	"context"
	"testing"
	"time"

	"pipeline/pipeline"
)

const syntheticYAML = `source:
  synthetic: {count: 40, width: 64, height: 48}
epochs: 1000
views: {recipe: mocov2, size: 32}
batch: {size: 8}
workers: {decode: 2, augment: 2}
memory_budget: 128MiB
`

func TestRunIsolatedReplaysTheStageAlone(t *testing.T) {
	for _, stage := range []string{StageDecode, StageAugment} {
		t.Run(stage, func(t *testing.T) {
			j := build(t, syntheticYAML)
			var budget *pipeline.Budget
			sum, err := j.RunIsolated(context.Background(), stage, 10, Options{
				MaxSamples: 50,
				OnStart:    func(r *pipeline.Run, b *pipeline.Budget) { budget = b },
			})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Read != 50 || sum.Emitted != 50 || sum.Stopped != "limit" {
				t.Fatalf("read %d, emitted %d, stopped %q; want 50, 50, limit", sum.Read, sum.Emitted, sum.Stopped)
			}
			var names []string
			for _, s := range sum.Stages {
				names = append(names, s.Name)
			}
			if len(names) != 3 || names[0] != "replay" || names[1] != stage || names[2] != "drop" {
				t.Fatalf("stages %v, want replay, %s, drop", names, stage)
			}
			if sum.Stages[1].Workers != 2 || sum.Stages[1].Out != 50 || sum.Stages[1].Busy <= 0 {
				t.Fatalf("isolated stage %+v", sum.Stages[1])
			}
			if budget.InUse() != 0 {
				t.Fatalf("%d bytes still charged after the run", budget.InUse())
			}
			// Augmenting the replays must draw new views: the recipe runs once per sample.
			if stage == StageAugment {
				var crops int64
				for _, op := range j.OpReports(sum.Seconds) {
					if op.Name == "random_resized_crop" {
						crops = op.Calls
					}
				}
				if crops != 100 { // two views a sample
					t.Fatalf("random_resized_crop ran %d times, want 100", crops)
				}
			}
		})
	}
}

func TestRunIsolatedStopsOnDuration(t *testing.T) {
	j := build(t, syntheticYAML)
	sum, err := j.RunIsolated(context.Background(), StageDecode, 5, Options{Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Stopped != "limit" || sum.Emitted == 0 || sum.Read != sum.Emitted {
		t.Fatalf("summary %+v", sum)
	}
}

func TestRunIsolatedRefusesOtherStages(t *testing.T) {
	j := build(t, syntheticYAML)
	if _, err := j.RunIsolated(context.Background(), "batch", 5, Options{}); err == nil {
		t.Fatal("batch cannot be isolated")
	}
}
