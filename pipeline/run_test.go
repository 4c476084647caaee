package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// countSource yields n items; items whose index is in bad fail with a SampleError.
type countSource struct {
	n, i int
	bad  map[int]bool
}

func (s *countSource) Next(ctx context.Context) (*Item, error) {
	if s.i >= s.n {
		return nil, io.EOF
	}
	m := Meta{Key: fmt.Sprintf("%04d", s.i), Index: int64(s.i), Shard: "mem"}
	s.i++
	if s.bad[s.i-1] {
		return nil, Badf(m, ReasonNoLabel, "no label")
	}
	return &Item{Meta: m}, nil
}

func TestRunOrderAndCounts(t *testing.T) {
	for _, policy := range []OnError{Skip, Fail} {
		t.Run(string(policy), func(t *testing.T) {
			r := NewRun(context.Background(), policy)
			win := NewWindow(16)
			var maxPending int
			src := r.Source("read", &countSource{n: 500, bad: map[int]bool{7: true}}, 4, win)
			mid := r.Stage("work", 8, 4, src, func(ctx context.Context, it *Item) error {
				time.Sleep(time.Duration(rand.IntN(50)) * time.Microsecond)
				if it.Index == 42 {
					return Badf(it.Meta, ReasonCorrupt, "bad pixels")
				}
				return nil
			})
			var ro Reorder
			var got []int64
			var skipped int
			var ready []*Item
			r.Consume("sink", mid, func(ctx context.Context, it *Item) error {
				var err error
				if ready, err = ro.Push(it, ready[:0]); err != nil {
					return err
				}
				maxPending = max(maxPending, ro.Pending())
				for _, x := range ready {
					win.Done()
					if x.Skip != nil {
						skipped++
						continue
					}
					got = append(got, x.Index)
				}
				return nil
			}, nil)
			err := r.Wait()
			if policy == Fail {
				var se *SampleError
				if !errors.As(err, &se) || se.Reason != ReasonNoLabel && se.Reason != ReasonCorrupt {
					t.Fatalf("want a SampleError, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if maxPending >= win.Size() {
				t.Fatalf("%d items pending in the reorder buffer, the window is %d", maxPending, win.Size())
			}
			if len(got)+skipped != 500 || skipped != 2 {
				t.Fatalf("emitted %d + skipped %d, want 498 + 2", len(got), skipped)
			}
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Fatalf("out of order at %d: %d after %d", i, got[i], got[i-1])
				}
			}
			rep := r.Skips()
			if rep.Total != 2 || rep.Reasons[ReasonCorrupt].Count != 1 || rep.Reasons[ReasonNoLabel].Keys[0] != "mem[0007]" {
				t.Fatalf("skip report %+v", rep)
			}
		})
	}
}

func TestRunPanicNamesSample(t *testing.T) {
	r := NewRun(context.Background(), Skip)
	src := r.Source("read", &countSource{n: 10}, 1, nil)
	mid := r.Stage("augment", 2, 1, src, func(ctx context.Context, it *Item) error {
		if it.Index == 3 {
			var m map[string]int
			m["x"] = 1
		}
		return nil
	})
	r.Consume("sink", mid, func(ctx context.Context, it *Item) error { return nil }, nil)
	err := r.Wait()
	if err == nil || !strings.Contains(err.Error(), "augment: mem[0003]: worker_panic") {
		t.Fatalf("want a panic error naming the sample, got %v", err)
	}
}

// panicSource panics on its third call.
type panicSource struct{ countSource }

func (s *panicSource) Next(ctx context.Context) (*Item, error) {
	if s.i == 2 {
		var m map[string]int
		m["x"] = 1
	}
	return s.countSource.Next(ctx)
}

// A source that panics ends the run with an error, like a stage that panics, instead of
// crashing the process before the summary.
func TestRunSourcePanicIsAnError(t *testing.T) {
	r := NewRun(context.Background(), Skip)
	src := r.Source("read", &panicSource{countSource{n: 10}}, 1, nil)
	r.Consume("sink", src, func(ctx context.Context, it *Item) error { return nil }, nil)
	err := r.Wait()
	if err == nil || !strings.Contains(err.Error(), "read: worker_panic") {
		t.Fatalf("want a panic error from the read stage, got %v", err)
	}
}

func TestBudgetBackpressure(t *testing.T) {
	b := NewBudget(BudgetSplit{Encoded: 64 << 10, Decoded: 1, Views: 1, Batches: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var items []*Item
	for i := 0; i < 4; i++ {
		it := &Item{}
		if _, err := b.Encoded.Alloc(ctx, it, 16<<10); err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
	// The account is full: the next allocation must wait until one item is released.
	got := make(chan error, 1)
	go func() {
		_, err := b.Encoded.Alloc(ctx, &Item{}, 10<<10)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("allocation over budget returned early: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	items[0].Release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if p := b.Encoded.Peak(); p > 64<<10 {
		t.Fatalf("peak %d over the account's limit", p)
	}
	if _, err := b.Decoded.Alloc(ctx, &Item{}, 100); err == nil {
		t.Fatal("a buffer larger than its whole account must fail, not wait")
	}
}

func TestSizeClass(t *testing.T) {
	for _, n := range []int{1, 4097, 5000, 1 << 20, 1<<20 + 1, 150528, 3 << 20} {
		c := SizeClass(n)
		if c < n || (n > 4096 && float64(c) > 1.25*float64(n)+1) {
			t.Errorf("SizeClass(%d) = %d", n, c)
		}
	}
}

func TestHistogramQuantile(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Observe(time.Duration(i) * time.Microsecond)
	}
	p50 := h.Quantile(0.5)
	if p50 < 500*time.Microsecond || p50 > 650*time.Microsecond {
		t.Fatalf("p50 %v", p50)
	}
	p99 := h.Quantile(0.99)
	if p99 < 990*time.Microsecond || p99 > 1250*time.Microsecond {
		t.Fatalf("p99 %v", p99)
	}
}

func TestDisableTimingKeepsCounts(t *testing.T) {
	for _, timed := range []bool{true, false} {
		r := NewRun(context.Background(), Skip)
		if !timed {
			r.DisableTiming()
		}
		src := r.Source("read", &countSource{n: 20}, 2, nil)
		mid := r.Stage("work", 2, 2, src, func(ctx context.Context, it *Item) error {
			time.Sleep(100 * time.Microsecond)
			return nil
		})
		r.Consume("sink", mid, func(ctx context.Context, it *Item) error { return nil }, nil)
		if err := r.Wait(); err != nil {
			t.Fatal(err)
		}
		work := r.Stages()[1].Snapshot()
		if work.Out != 20 || !work.Parallel || r.Stages()[0].Parallel {
			t.Fatalf("timed %v: counts %+v", timed, work)
		}
		if gotTime := work.Busy > 0 && work.LatencyP50 > 0; gotTime != timed {
			t.Fatalf("timed %v: busy %v, p50 %v", timed, work.Busy, work.LatencyP50)
		}
	}
}

// A call longer than the sampling interval counts as busy while it runs: a sink stuck in its
// first Write (a trainer compiling) is the bottleneck, not whichever stage comes first. Once
// it returns, the total is its duration, counted once.
func TestSnapshotCountsCallsInProgress(t *testing.T) {
	r := NewRun(context.Background(), Fail)
	release := make(chan struct{})
	started := make(chan struct{})
	src := r.Source("read", &countSource{n: 1}, 1, nil)
	r.Consume("sink", src, func(ctx context.Context, it *Item) error {
		close(started)
		<-release
		return nil
	}, nil)
	<-started
	sink := r.Stages()[1]
	first := sink.Snapshot().Busy
	time.Sleep(30 * time.Millisecond)
	second := sink.Snapshot().Busy
	if second-first < 25*time.Millisecond {
		t.Fatalf("busy went from %v to %v over 30ms of a running call", first, second)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	total := sink.Snapshot().Busy
	if total < 50*time.Millisecond || total > second+time.Second {
		t.Fatalf("busy %v after a call of at least 50ms (seen %v while it ran)", total, second)
	}
	if d := time.Duration(sink.BusyNs.Load()); d != total {
		t.Fatalf("an idle stage's snapshot %v differs from its counter %v", total, d)
	}
}

// A worker's wait on the stages after it counts as blocked, not busy: WaitDownstream, which a
// full memory account calls too.
func TestWaitsDownstreamCountAsBlocked(t *testing.T) {
	budget := NewBudget(BudgetSplit{Encoded: 1 << 20, Decoded: 8192, Views: 1 << 20, Batches: 1 << 20})
	holder := &Item{}
	if _, err := budget.Decoded.Alloc(context.Background(), holder, 8192); err != nil { // the account is full
		t.Fatal(err)
	}
	r := NewRun(context.Background(), Fail)
	src := r.Source("read", &countSource{n: 2}, 1, nil)
	mid := r.Stage("work", 1, 1, src, func(ctx context.Context, it *Item) error {
		if it.Index == 0 {
			defer WaitDownstream(ctx)()
			time.Sleep(40 * time.Millisecond)
			return nil
		}
		_, err := budget.Decoded.Alloc(ctx, it, 4096) // waits for the full account
		return err
	})
	r.Consume("sink", mid, func(ctx context.Context, it *Item) error { it.Release(); return nil }, nil)
	go func() {
		time.Sleep(80 * time.Millisecond)
		holder.Release()
	}()
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	st := r.Stages()[1].Snapshot()
	if st.Blocked < 70*time.Millisecond || st.Busy > 30*time.Millisecond {
		t.Fatalf("busy %v, blocked %v: want the 40ms wait and the ~40ms wait for memory blocked", st.Busy, st.Blocked)
	}
	if st.LatencyP99 > 20*time.Millisecond {
		t.Fatalf("latency p99 %v: the per-item latency is busy time, waits excluded", st.LatencyP99)
	}
}
