package pipeline

import (
	"context"
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

	// busySince holds, per worker, when its current stretch of work began (Unix ns; 0: not
	// working), and blockedSince when its current wait downstream began. Snapshot counts what
	// is still running, so a call longer than the sampling interval (a trainer compiling its
	// first step) shows as busy while it runs, not all at once when it returns.
	busySince, blockedSince []atomic.Int64
	// starvedSince holds, per worker, when its current wait for an input item began, and
	// blockedSince also the start of a wait for room in the output queue (or a window slot),
	// which comes between calls: Snapshot counts the waits still going on too.
	starvedSince []atomic.Int64
	// callBlocked is, per worker, the time its current call spent blocked (Block to Unblock);
	// only that worker's goroutine touches it.
	callBlocked []time.Duration

	queueLen func() int // items waiting in the stage's output queue
	queueCap int
	untimed  bool // Run.DisableTiming: no clock reads
}

// Timed reports whether the stage's clock runs: Run.DisableTiming turns it off for the stages
// started after it. A stage the caller runs itself (Track) reads no clock when it is off.
func (s *StageStats) Timed() bool { return !s.untimed }

// Begin marks worker w busy from now on and returns the start time (zero when timing is off).
func (s *StageStats) Begin(w int) time.Time {
	if s.untimed {
		return time.Time{}
	}
	t0 := time.Now()
	s.busySince[w].Store(t0.UnixNano())
	return t0
}

// End ends worker w's call begun at t0, adds its busy time to BusyNs and returns that busy
// time: the call's duration less its waits downstream (0 when timing is off).
func (s *StageStats) End(w int, t0 time.Time) time.Duration {
	if s.untimed {
		return 0
	}
	now := time.Now()
	s.stopClock(&s.busySince[w], &s.BusyNs, now.UnixNano())
	d := now.Sub(t0) - s.callBlocked[w]
	s.callBlocked[w] = 0
	return max(0, d)
}

// Block marks worker w, inside a call, as waiting for room downstream until Unblock: a
// consumer that hands its output on itself (the batcher sending to the sink) is blocked then,
// not busy.
func (s *StageStats) Block(w int) {
	if s.untimed {
		return
	}
	now := time.Now().UnixNano()
	s.stopClock(&s.busySince[w], &s.BusyNs, now)
	s.blockedSince[w].Store(now)
}

// Unblock ends the wait Block began; the call is busy again.
func (s *StageStats) Unblock(w int) {
	if s.untimed {
		return
	}
	now := time.Now().UnixNano()
	s.callBlocked[w] += s.stopClock(&s.blockedSince[w], &s.BlockedNs, now)
	s.busySince[w].Store(now)
}

// BeginStarved marks worker w as waiting for an input item until EndStarved: for a stage the
// caller runs itself (Track), so that a long wait shows while it lasts.
func (s *StageStats) BeginStarved(w int) { s.startWait(&s.starvedSince[w]) }

// EndStarved ends the wait BeginStarved began and adds it to StarvedNs.
func (s *StageStats) EndStarved(w int) { s.endWait(&s.starvedSince[w], &s.StarvedNs) }

// startWait marks a wait (between calls) begun now in *since.
func (s *StageStats) startWait(since *atomic.Int64) {
	if !s.untimed {
		since.Store(time.Now().UnixNano())
	}
}

// endWait ends the wait in *since and adds it to total.
func (s *StageStats) endWait(since, total *atomic.Int64) {
	if !s.untimed {
		s.stopClock(since, total, time.Now().UnixNano())
	}
}

// workerKey keys the workerClock in the context a stage worker hands its function.
type workerKey struct{}

// workerClock is the stage and worker a call runs as.
type workerClock struct {
	st *StageStats
	w  int
}

// workerContext is ctx carrying the clock of worker w of st.
func workerContext(ctx context.Context, st *StageStats, w int) context.Context {
	return context.WithValue(ctx, workerKey{}, &workerClock{st: st, w: w})
}

// WaitDownstream marks the stage worker running under ctx as blocked, not busy, until the
// returned function is called: for a wait on the stages after it (room in the sink's queue, a
// full memory account). Under a context no stage worker gave, it does nothing. Waits do not
// nest: call resume before waiting again.
func WaitDownstream(ctx context.Context) (resume func()) {
	wc, _ := ctx.Value(workerKey{}).(*workerClock)
	if wc == nil {
		return func() {}
	}
	wc.st.Block(wc.w)
	return func() { wc.st.Unblock(wc.w) }
}

// WithoutWorker is ctx for a goroutine a stage function starts, which outlives the call or
// runs beside it: its waits are not the worker's.
func WithoutWorker(ctx context.Context) context.Context {
	return context.WithValue(ctx, workerKey{}, (*workerClock)(nil))
}

// stopClock adds the time from *since to now (Unix ns) to total, clears *since and returns that
// time. It clears first: a Snapshot taken in between may miss that stretch for a moment, never
// count it twice.
func (s *StageStats) stopClock(since, total *atomic.Int64, now int64) time.Duration {
	t := since.Swap(0)
	if t == 0 {
		return 0
	}
	d := max(0, now-t)
	total.Add(d)
	return time.Duration(d)
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

// Snapshot copies the counters. Busy includes the calls still running, Starved and Blocked the
// waits still going on.
func (s *StageStats) Snapshot() Snapshot {
	n, c := s.Queue()
	// The totals before the clocks still running: see stopClock.
	busy, starved, blocked := s.BusyNs.Load(), s.StarvedNs.Load(), s.BlockedNs.Load()
	now := time.Now().UnixNano()
	running := func(since []atomic.Int64) (d int64) {
		for i := range since {
			if t := since[i].Load(); t != 0 {
				d += max(0, now-t)
			}
		}
		return d
	}
	busy += running(s.busySince)
	starved += running(s.starvedSince)
	blocked += running(s.blockedSince)
	return Snapshot{
		Name: s.Name, Workers: s.Workers, Parallel: s.Parallel,
		In: s.In.Load(), Out: s.Out.Load(), Skipped: s.Skipped.Load(),
		Busy:       time.Duration(busy),
		Starved:    time.Duration(starved),
		Blocked:    time.Duration(blocked),
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
