package augment

import (
	"sync/atomic"
	"time"
)

// opNames lists every timed op, in report order.
var opNames = [...]string{OpCrop, OpBrightness, OpContrast, OpSaturation, OpHue, OpGrayscale, OpBlur, OpFlip, OpSolarize}

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

// opStats holds an atomic count and nanosecond total per op name. A nil *opStats times
// nothing, so that replay paths pay no clock reads.
type opStats struct {
	count [len(opNames)]atomic.Int64
	ns    [len(opNames)]atomic.Int64
}

func opIndex(name string) int {
	for i, n := range opNames {
		if n == name {
			return i
		}
	}
	return -1
}

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
	i := opIndex(name)
	s.count[i].Add(1)
	s.ns[i].Add(int64(time.Since(t0)))
}

func (s *opStats) snapshot() []OpStat {
	out := make([]OpStat, len(opNames))
	for i, n := range opNames {
		out[i] = OpStat{Name: n, Count: s.count[i].Load(), Total: time.Duration(s.ns[i].Load())}
	}
	return out
}
