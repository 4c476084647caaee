package job

import (
	"context"
	"testing"

	"pipeline/sink/null"
)

// Options.NoTiming leaves every stage's busy, starved and blocked time and its latencies at
// zero, the sink's included: the run it measures must read no clock per item.
func TestNoTimingLeavesEveryStageUntimed(t *testing.T) {
	j := build(t, syntheticYAML)
	sum, err := j.Run(context.Background(), Options{Sink: null.New(null.Config{}), MaxSamples: 24, NoTiming: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Emitted != 24 {
		t.Fatalf("emitted %d, want 24", sum.Emitted)
	}
	for _, s := range sum.Stages {
		if s.Out == 0 {
			t.Errorf("stage %s: no item out", s.Name)
		}
		if s.Busy != 0 || s.Starved != 0 || s.Blocked != 0 || s.LatencyP50 != 0 || s.LatencyP99 != 0 {
			t.Errorf("stage %s timed with NoTiming: busy %g, starved %g, blocked %g, p50 %g ms, p99 %g ms",
				s.Name, s.Busy, s.Starved, s.Blocked, s.LatencyP50, s.LatencyP99)
		}
	}
}
