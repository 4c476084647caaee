package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"pipeline/pipeline/monitor"
)

// progress shows a run's live counters: one rewritten line on a terminal, a log line every 10
// seconds otherwise.
type progress struct {
	w        io.Writer
	mode     string // bar, log or off
	epochs   int
	start    time.Time
	lastLog  time.Time
	wroteBar bool
}

func newProgress(w io.Writer, mode string, epochs int) *progress {
	if mode == "auto" {
		mode = "log"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				mode = "bar"
			}
		}
	}
	return &progress{w: w, mode: mode, epochs: epochs, start: time.Now(), lastLog: time.Now()}
}

func (p *progress) update(s monitor.Sample) {
	if p.mode == "off" || len(s.Stages) == 0 {
		return
	}
	last := s.Stages[len(s.Stages)-1]
	rate, total := 0.0, int64(0)
	for _, st := range s.Stages {
		if st.Name == "batch" {
			rate, total = st.ItemsPerS, st.Total
		}
	}
	line := fmt.Sprintf("%s  %8d samples  %7.0f samples/s  sink %5.1f batches/s  bottleneck %-8s  mem %s",
		time.Since(p.start).Round(time.Second), total, rate, last.ItemsPerS, s.Bottleneck, humanBytes(s.MemoryUsed))
	switch p.mode {
	case "bar":
		fmt.Fprintf(p.w, "\r%s ", line)
		p.wroteBar = true
	case "log":
		if time.Since(p.lastLog) >= 10*time.Second {
			fmt.Fprintln(p.w, line)
			p.lastLog = time.Now()
		}
	}
}

func (p *progress) finish() {
	if p.wroteBar {
		fmt.Fprintln(p.w)
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0fMiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
