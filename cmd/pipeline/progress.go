package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"pipeline/monitor"
	"pipeline/stages/source"
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

	// Where the sink is, from the positions of the batches it accepted: the epoch shown, and
	// the samples an epoch holds once one has ended (the ETA needs it; tar shards do not say).
	mu       sync.Mutex
	pos      source.Position
	seen     bool
	step     int64 // samples one batch advanced the position, within an epoch
	perEpoch int64
}

// delivered records the position after a batch the sink accepted (from the sink's goroutine).
func (p *progress) delivered(pos source.Position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen {
		if pos.Epoch == p.pos.Epoch {
			p.step = max(p.step, pos.Offset-p.pos.Offset)
		} else if p.perEpoch == 0 && pos.Epoch == p.pos.Epoch+1 && p.step > 0 {
			// The batch that crossed the boundary ended the old epoch and began the new one.
			p.perEpoch = p.pos.Offset + p.step - pos.Offset
		}
	}
	p.pos, p.seen = pos, true
}

// epochAndETA says "epoch E/N" and, once the size of an epoch is known, the time left at rate.
func (p *progress) epochAndETA(rate float64) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.seen {
		return ""
	}
	out := fmt.Sprintf("epoch %d/%d  ", p.pos.Epoch+1, p.epochs)
	if p.perEpoch > 0 && rate > 0 {
		left := int64(p.epochs)*p.perEpoch - (int64(p.pos.Epoch)*p.perEpoch + p.pos.Offset)
		eta := time.Duration(float64(max(left, 0)) / rate * float64(time.Second))
		out += fmt.Sprintf("ETA %s  ", eta.Round(time.Second))
	}
	return out
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
	line := fmt.Sprintf("%s  %s%8d samples  %7.0f samples/s  sink %5.1f batches/s  bottleneck %-8s  mem %s",
		time.Since(p.start).Round(time.Second), p.epochAndETA(rate), total, rate, last.ItemsPerS, s.Bottleneck, humanBytes(s.MemoryUsed))
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
