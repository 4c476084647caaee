package augment

import (
	"sync"
	"sync/atomic"
	"time"
)

// OpStat is the time spent in one op over all views so far.
type OpStat struct {
	Name  string
	Count int64         // how many times it ran
	Total time.Duration // summed over workers
}

// Mean is the average time of one run of the op.
func (s OpStat) Mean() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return s.Total / time.Duration(s.Count)
}

// opStats holds an atomic count and nanosecond total per op timer (timerNames, the ops'
// timers in report order). A nil *opStats times nothing, so that replay paths pay no clock
// reads.
type opStats struct {
	count, ns []atomic.Int64
}

func newOpStats() opStats {
	n := len(timerNames())
	return opStats{count: make([]atomic.Int64, n), ns: make([]atomic.Int64, n)}
}

// timerIndex maps a timer's name to its counters.
var timerIndex = sync.OnceValue(func() map[string]int {
	m := map[string]int{}
	for i, n := range timerNames() {
		m[n] = i
	}
	return m
})

func (s *opStats) start() time.Time {
	if s == nil {
		return time.Time{}
	}
	return time.Now()
}

func (s *opStats) stop(name string, t0 time.Time) {
	if s == nil {
		return
	}
	i := timerIndex()[name]
	s.count[i].Add(1)
	s.ns[i].Add(int64(time.Since(t0)))
}

func (s *opStats) snapshot() []OpStat {
	out := make([]OpStat, len(s.count))
	for i, n := range timerNames() {
		out[i] = OpStat{Name: n, Count: s.count[i].Load(), Total: time.Duration(s.ns[i].Load())}
	}
	return out
}
