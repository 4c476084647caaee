// Package monitor samples a running pipeline's stage counters at a fixed interval and turns
// the deltas into rates and fractions, so that progress lines, metrics files and the profiler
// all read the same numbers and name the same bottleneck.
package monitor

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"pipeline/pipeline"
)

// StageSample is one stage over one interval.
type StageSample struct {
	Name      string  `json:"name"`
	Workers   int     `json:"workers"`
	ItemsPerS float64 `json:"items_per_s"`
	Busy      float64 `json:"busy"`      // fraction of worker time spent working
	Starved   float64 `json:"starved"`   // fraction waiting for input
	Blocked   float64 `json:"blocked"`   // fraction waiting on the next stage
	Queue     float64 `json:"queue"`     // output queue occupancy, 0..1
	QueueCap  int     `json:"queue_cap"` // 0: the stage has no output queue
	Total     int64   `json:"total"`     // items out since the start
}

// Sample is every stage over one interval.
type Sample struct {
	At         float64       `json:"t"` // seconds since the monitor started
	Stages     []StageSample `json:"stages"`
	MemoryUsed int64         `json:"memory_used"`
	Bottleneck string        `json:"bottleneck"`
}

// Monitor samples a run until its context ends or Stop (or Finish) is called.
type Monitor struct {
	mu      sync.Mutex
	samples []Sample
	stop    chan struct{}
	done    chan struct{}
	final   atomic.Bool // Finish: sample the time since the last tick before stopping
}

// Start samples r (and the budget, if not nil) every interval and calls onSample, if not nil,
// from the monitor's own goroutine.
func Start(ctx context.Context, r *pipeline.Run, b *pipeline.Budget, interval time.Duration, onSample func(Sample)) *Monitor {
	m := &Monitor{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		start := time.Now()
		prev := snapshots(r)
		prevAt := start
		t := time.NewTicker(interval)
		defer t.Stop()
		sample := func(now time.Time) {
			cur := snapshots(r)
			s := Delta(prev, cur, now.Sub(prevAt))
			s.At = now.Sub(start).Seconds()
			if b != nil {
				s.MemoryUsed = b.InUse()
			}
			m.mu.Lock()
			m.samples = append(m.samples, s)
			m.mu.Unlock()
			if onSample != nil {
				onSample(s)
			}
			prev, prevAt = cur, now
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-m.stop:
				if now := time.Now(); m.final.Load() && now.After(prevAt) {
					sample(now)
				}
				return
			case now := <-t.C:
				sample(now)
			}
		}
	}()
	return m
}

// Finish is Stop after one last, shorter sample of the time since the last tick: a run shorter
// than the interval still gets a progress line and a metrics line, and the last one's counts
// are the run's. (Profile's timeline uses Stop: a short tail would weigh as a whole interval.)
func (m *Monitor) Finish() {
	m.final.Store(true)
	m.Stop()
}

// Stop ends sampling and waits for the monitor's goroutine.
func (m *Monitor) Stop() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

// Samples returns what was sampled so far.
func (m *Monitor) Samples() []Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Sample(nil), m.samples...)
}

func snapshots(r *pipeline.Run) []pipeline.Snapshot {
	var out []pipeline.Snapshot
	for _, s := range r.Stages() {
		out = append(out, s.Snapshot())
	}
	return out
}

// Delta turns two snapshots of the same stages, dt apart, into a Sample.
func Delta(prev, cur []pipeline.Snapshot, dt time.Duration) Sample {
	var s Sample
	for i, c := range cur {
		var p pipeline.Snapshot
		if i < len(prev) && prev[i].Name == c.Name {
			p = prev[i]
		}
		total := float64(dt) * float64(max(c.Workers, 1))
		ss := StageSample{Name: c.Name, Workers: c.Workers, Total: c.Out}
		if dt > 0 {
			ss.ItemsPerS = float64(c.Out-p.Out) / dt.Seconds()
			ss.Busy = clamp01(float64(c.Busy-p.Busy) / total)
			ss.Starved = clamp01(float64(c.Starved-p.Starved) / total)
			ss.Blocked = clamp01(float64(c.Blocked-p.Blocked) / total)
		}
		ss.QueueCap = c.QueueCap
		if c.QueueCap > 0 {
			ss.Queue = float64(c.QueueLen) / float64(c.QueueCap)
		}
		s.Stages = append(s.Stages, ss)
	}
	s.Bottleneck = Bottleneck(s.Stages)
	return s
}

// Bottleneck names the stage that limits throughput: the one whose workers are busiest. A
// stage that limits the flow works all the time while those before it are blocked and those
// after it starve, so its busy fraction is the highest.
func Bottleneck(stages []StageSample) string {
	best, bestBusy := "", -1.0
	for _, s := range stages {
		if s.Busy > bestBusy {
			best, bestBusy = s.Name, s.Busy
		}
	}
	return best
}

func clamp01(x float64) float64 { return min(1, max(0, x)) }
