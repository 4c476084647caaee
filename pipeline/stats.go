package pipeline

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// StageStats are the counters the runtime keeps for every stage. All fields are safe to read
// while the run goes on; the profiler samples them.
type StageStats struct {
	Name     string
	Workers  int
	Parallel bool // a Stage, whose worker count can be changed (the others are serial)

	In, Out, Skipped atomic.Int64
	// Time summed over workers, in nanoseconds: running the stage function (busy), waiting for
	// an input item (starved) and waiting for room downstream (blocked).
	BusyNs, StarvedNs, BlockedNs atomic.Int64

	Latency Histogram // busy time per item

	queueLen func() int // items waiting in the stage's output queue
	queueCap int
	untimed  bool // Run.DisableTiming: no clock reads
}

// clock reads the time, unless timing is off.
func (s *StageStats) clock() time.Time {
	if s.untimed {
		return time.Time{}
	}
	return time.Now()
}

// addSince adds the time since t0 to the counter c and returns it (0 when timing is off).
func (s *StageStats) addSince(c *atomic.Int64, t0 time.Time) time.Duration {
	if s.untimed {
		return 0
	}
	d := time.Since(t0)
	c.Add(int64(d))
	return d
}

func (s *StageStats) observe(d time.Duration) {
	if !s.untimed {
		s.Latency.Observe(d)
	}
}

// Queue reports how many items wait in the stage's output queue and its capacity.
func (s *StageStats) Queue() (n, capacity int) {
	if s.queueLen == nil {
		return 0, 0
	}
	return s.queueLen(), s.queueCap
}

// Snapshot is a plain copy of a stage's counters at one moment.
type Snapshot struct {
	Name                   string
	Workers                int
	Parallel               bool
	In, Out, Skipped       int64
	Busy, Starved, Blocked time.Duration
	QueueLen, QueueCap     int
	LatencyP50, LatencyP99 time.Duration
}

// Snapshot copies the counters.
func (s *StageStats) Snapshot() Snapshot {
	n, c := s.Queue()
	return Snapshot{
		Name: s.Name, Workers: s.Workers, Parallel: s.Parallel,
		In: s.In.Load(), Out: s.Out.Load(), Skipped: s.Skipped.Load(),
		Busy:       time.Duration(s.BusyNs.Load()),
		Starved:    time.Duration(s.StarvedNs.Load()),
		Blocked:    time.Duration(s.BlockedNs.Load()),
		QueueLen:   n,
		QueueCap:   c,
		LatencyP50: s.Latency.Quantile(0.5),
		LatencyP99: s.Latency.Quantile(0.99),
	}
}

// Histogram counts durations in buckets a quarter of a power of two wide (about 19% apart),
// from 1µs to about 1 hour, without locks.
type Histogram struct {
	buckets [histBuckets]atomic.Int64
}

const histBuckets = 4 * 32

func histBucket(d time.Duration) int {
	us := uint64(d / time.Microsecond)
	if us < 1 {
		return 0
	}
	hi := bits.Len64(us) - 1
	frac := 0
	if hi >= 2 {
		frac = int((us >> (hi - 2)) & 3)
	} else if hi == 1 {
		frac = int(us&1) * 2
	}
	b := hi*4 + frac
	if b >= histBuckets {
		b = histBuckets - 1
	}
	return b
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) { h.buckets[histBucket(d)].Add(1) }

// Count is the number of observations.
func (h *Histogram) Count() int64 {
	var n int64
	for i := range h.buckets {
		n += h.buckets[i].Load()
	}
	return n
}

// Quantile returns the upper edge of the bucket holding quantile q (0 < q < 1), or 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			hi, frac := i/4, i%4
			upper := float64(uint64(1)<<hi) * (1 + float64(frac+1)/4)
			return time.Duration(upper * float64(time.Microsecond))
		}
	}
	return 0
}
