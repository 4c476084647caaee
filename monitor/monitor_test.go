package monitor

import (
	"context"
	"io"
	"math"
	"testing"
	"time"

	"pipeline/pipeline"
)

func TestSuggestKeepsUpWithTheCores(t *testing.T) {
	costs := []StageCost{
		{Name: "read", Seconds: 50e-6},
		{Name: "decode", Seconds: 1e-3, Parallel: true},
		{Name: "augment", Seconds: 2e-3, Parallel: true},
		{Name: "batch", Seconds: 20e-6},
		{Name: "sink", Seconds: 0.1e-3},
	}
	// 16 cores at 3.2 ms of CPU an item: 5000 items/s, so in a smooth flow decode needs 5
	// workers and augment 10; with the headroom, three times that.
	s := Suggest(costs, 3.2e-3, 16)
	if s.Workers["decode"] != 5*Headroom || s.Workers["augment"] != 10*Headroom || s.Workers["batch"] != 1 {
		t.Fatalf("split %v", s.Workers)
	}
	if math.Abs(s.ItemsPerS-5000) > 1e-6 || s.Bottleneck != "cpu" {
		t.Fatalf("predicted %.0f items/s limited by %s, want 5000 by cpu", s.ItemsPerS, s.Bottleneck)
	}
	// Two cores, 625 items/s: 0.625 and 1.25 workers in a smooth flow, 2 and 4 with the
	// headroom; more workers than cores, so that no core idles while a worker waits.
	s = Suggest(costs, 3.2e-3, 2)
	if s.Workers["decode"] != 2 || s.Workers["augment"] != 4 {
		t.Fatalf("2 cores: split %v", s.Workers)
	}
}

func TestSuggestSerialBottleneck(t *testing.T) {
	costs := []StageCost{
		{Name: "decode", Seconds: 1e-3, Parallel: true},
		{Name: "augment", Seconds: 1e-3, Parallel: true},
		{Name: "sink", Seconds: 1e-2}, // a slow GPU step: 100 items/s at most
	}
	s := Suggest(costs, 2e-3, 8)
	if s.Bottleneck != "sink" || math.Abs(s.ItemsPerS-100) > 1e-6 || s.Workers["decode"] != 1 || s.Workers["augment"] != 1 {
		t.Fatalf("want the sink to limit at 100/s with one worker each, got %+v", s)
	}
}

func TestSuggestBalancesWaitingStages(t *testing.T) {
	// Stages that sleep cost no CPU: they would take any number of workers, so the cap is
	// shared out (8 for 2 cores) to balance their costs.
	costs := []StageCost{
		{Name: "decode", Seconds: 1e-3, Parallel: true},
		{Name: "augment", Seconds: 3.5e-3, Parallel: true},
	}
	s := Suggest(costs, 1e-5, 2)
	if s.Workers["decode"] != 2 || s.Workers["augment"] != 6 || s.Bottleneck != "augment" || math.Abs(s.ItemsPerS-6/3.5e-3) > 1e-6 {
		t.Fatalf("split %+v, want decode 2, augment 6, 1714/s limited by augment", s)
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

// nItems yields n empty items.
type nItems struct{ n int }

func (s *nItems) Next(context.Context) (*pipeline.Item, error) {
	if s.n == 0 {
		return nil, io.EOF
	}
	s.n--
	return &pipeline.Item{}, nil
}

// A run shorter than the interval still gets a sample from Finish, covering all of it; Stop
// takes none.
func TestFinishSamplesTheTail(t *testing.T) {
	for _, finish := range []bool{true, false} {
		r := pipeline.NewRun(context.Background(), pipeline.Skip)
		src := r.Source("read", &nItems{n: 7}, 2, nil)
		r.Consume("sink", src, func(context.Context, *pipeline.Item) error { return nil }, nil)
		var got []Sample
		m := Start(context.Background(), r, nil, time.Hour, func(s Sample) { got = append(got, s) })
		if err := r.Wait(); err != nil {
			t.Fatal(err)
		}
		if finish {
			m.Finish()
		} else {
			m.Stop()
		}
		switch {
		case !finish && len(got) != 0:
			t.Errorf("Stop: %d samples, want none", len(got))
		case finish && len(got) != 1:
			t.Errorf("Finish: %d samples, want 1", len(got))
		case finish && (got[0].Stages[0].Name != "read" || got[0].Stages[0].Total != 7):
			t.Errorf("Finish: sample %+v, want read's 7 items", got[0].Stages[0])
		}
	}
}
