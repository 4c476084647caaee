// Package soak watches a long run for leaks: it samples the process's resident memory, the Go
// heap and the goroutine count at a fixed interval, and judges whether they stayed flat.
// The soak test itself (soak_test.go) runs only with PIPELINE_SOAK=1; see docs/reliability.md.
package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Sample is the process's state at one moment of a run.
type Sample struct {
	Elapsed    time.Duration
	RSS        int64  // resident set size, bytes (VmRSS)
	HeapAlloc  uint64 // bytes of allocated heap objects, live or not yet collected
	HeapInuse  uint64 // bytes in in-use heap spans
	Goroutines int
	Progress   int64 // what the caller counts (samples emitted, say)
}

// RSS reads the resident set size of this process from /proc/self/status.
func RSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("VmRSS:")) {
			continue
		}
		fields := bytes.Fields(line[len("VmRSS:"):])
		if len(fields) != 2 || string(fields[1]) != "kB" {
			return 0, fmt.Errorf("/proc/self/status: unexpected VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/self/status: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/self/status has no VmRSS line")
}

// Take samples the process now.
func Take(start time.Time, progress int64) (Sample, error) {
	rss, err := RSS()
	if err != nil {
		return Sample{}, err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Sample{
		Elapsed: time.Since(start), RSS: rss, HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse,
		Goroutines: runtime.NumGoroutine(), Progress: progress,
	}, nil
}

// Recorder samples the process every interval on its own goroutine until Stop.
type Recorder struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	samples []Sample
	err     error
}

// Record starts sampling; progress (may be nil) is read at each sample.
func Record(ctx context.Context, interval time.Duration, progress func() int64) *Recorder {
	ctx, cancel := context.WithCancel(ctx)
	r := &Recorder{cancel: cancel, done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(r.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var p int64
			if progress != nil {
				p = progress()
			}
			s, err := Take(start, p)
			r.mu.Lock()
			if err != nil {
				r.err = err
				r.mu.Unlock()
				return
			}
			r.samples = append(r.samples, s)
			r.mu.Unlock()
		}
	}()
	return r
}

// Stop ends the sampling and returns the samples, or the error that ended it.
func (r *Recorder) Stop() ([]Sample, error) {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.samples, r.err
}

// Verdict compares the first and the last quarter of the samples taken after a warm-up.
type Verdict struct {
	Metric          string
	FirstMax        float64 // the largest value in the first quarter after warm-up
	LastMax         float64 // the largest value in the last quarter
	Growth          float64 // LastMax/FirstMax - 1
	Tolerance       float64
	Flat            bool // Growth <= Tolerance
	Samples, Warmup int
}

func (v Verdict) String() string {
	ok := "flat"
	if !v.Flat {
		ok = "GROWING"
	}
	return fmt.Sprintf("%s: first-quarter max %.4g, last-quarter max %.4g (%+.1f%%, tolerance %.0f%%): %s",
		v.Metric, v.FirstMax, v.LastMax, 100*v.Growth, 100*v.Tolerance, ok)
}

// Judge says whether metric stayed flat: after dropping the first warmup samples, the
// largest value of the last quarter is at most (1+tolerance) times the largest value of the
// first quarter. Maxima rather than means, because the garbage collector makes the heap a
// saw-tooth: a leak raises its peaks.
func Judge(samples []Sample, warmup int, metric string, value func(Sample) float64, tolerance float64) (Verdict, error) {
	v := Verdict{Metric: metric, Tolerance: tolerance, Samples: len(samples), Warmup: warmup}
	rest := samples[min(warmup, len(samples)):]
	if len(rest) < 8 {
		return v, fmt.Errorf("%s: %d samples after a warm-up of %d: too few to judge (want 8)", metric, len(rest), warmup)
	}
	q := len(rest) / 4
	maxOf := func(s []Sample) float64 {
		m := value(s[0])
		for _, x := range s[1:] {
			m = max(m, value(x))
		}
		return m
	}
	v.FirstMax, v.LastMax = maxOf(rest[:q]), maxOf(rest[len(rest)-q:])
	if v.FirstMax > 0 {
		v.Growth = v.LastMax/v.FirstMax - 1
	} else if v.LastMax > 0 {
		v.Growth = 1
	}
	v.Flat = v.Growth <= tolerance
	return v, nil
}
