package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// OnError is the policy for bad samples and shards.
type OnError string

const (
	// Skip drops the bad sample (or the rest of a bad shard), counts it and goes on.
	Skip OnError = "skip"
	// Fail stops the run at the first bad sample.
	Fail OnError = "fail"
)

// Source yields samples with their encoded bytes. Next returns io.EOF after the last one.
// A *SampleError drops that sample and a *ShardError the rest of a shard under the skip policy;
// any other error stops the run. Next is called from one goroutine.
type Source interface {
	Next(ctx context.Context) (*Item, error)
}

// StageFunc processes one item in place. Returning a *SampleError marks the sample bad.
type StageFunc func(ctx context.Context, it *Item) error

// Run owns every goroutine of one pipeline run: the stages started on it stop when the first
// of them fails or when the parent context ends, and Wait returns the first error.
type Run struct {
	ctx    context.Context
	group  *errgroup.Group
	policy OnError

	mu     sync.Mutex
	stages []*StageStats
	skips  SkipLog

	stopOnce sync.Once
	stop     chan struct{} // closed by StopSource

	untimed bool // set by DisableTiming
}

// NewRun starts an empty run under ctx.
func NewRun(ctx context.Context, policy OnError) *Run {
	g, gctx := errgroup.WithContext(ctx)
	if policy == "" {
		policy = Skip
	}
	return &Run{ctx: gctx, group: g, policy: policy, stop: make(chan struct{})}
}

// DisableTiming turns off the clock reads behind the busy, starved and blocked times and the
// latency histograms of the stages started after it (item counts are kept). It exists to
// measure what the timing costs; profiles and progress lines need it on.
func (r *Run) DisableTiming() { r.untimed = true }

// StopSource makes the sources stop reading as if their data had ended: the items already in
// flight still go through every stage and reach the sink. This is the graceful stop.
func (r *Run) StopSource() { r.stopOnce.Do(func() { close(r.stop) }) }

// Skipped records a sample dropped outside the runtime's stages (by the batcher, say).
func (r *Run) Skipped(se *SampleError) { r.skips.add(se) }

// Context is cancelled when the run stops.
func (r *Run) Context() context.Context { return r.ctx }

// Go runs fn as one more goroutine owned by the run.
func (r *Run) Go(fn func(ctx context.Context) error) { r.group.Go(func() error { return fn(r.ctx) }) }

// Wait waits for every goroutine and returns the first error.
func (r *Run) Wait() error { return r.group.Wait() }

// Stages returns the counters of every stage, in flow order.
func (r *Run) Stages() []*StageStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*StageStats(nil), r.stages...)
}

// Skips returns what was skipped so far.
func (r *Run) Skips() SkipReport { return r.skips.Report() }

func (r *Run) newStats(name string, workers int, out chan *Item) *StageStats {
	if out == nil {
		return r.Track(name, workers, nil, 0)
	}
	return r.Track(name, workers, func() int { return len(out) }, cap(out))
}

// Track registers the counters of a stage the caller runs itself (with Go), so that it is
// reported like the others. queueLen may be nil.
func (r *Run) Track(name string, workers int, queueLen func() int, queueCap int) *StageStats {
	s := &StageStats{Name: name, Workers: workers, queueLen: queueLen, queueCap: queueCap, untimed: r.untimed,
		busySince: make([]atomic.Int64, max(workers, 1)), blockedSince: make([]atomic.Int64, max(workers, 1)),
		starvedSince: make([]atomic.Int64, max(workers, 1)), callBlocked: make([]time.Duration, max(workers, 1))}
	r.mu.Lock()
	r.stages = append(r.stages, s)
	r.mu.Unlock()
	return s
}

// Source starts one goroutine that pulls items from src, numbers them (Item.Seq) and sends
// them into a queue of the given capacity. When window is not nil, the source takes one of its
// slots per item before reading it, and the consumer gives it back (Window.Done) once the item
// left the pipeline in order: this bounds the items in flight, and so the views the reorder
// buffer may hold while it waits for a slow item.
func (r *Run) Source(name string, src Source, queue int, window *Window) <-chan *Item {
	out := make(chan *Item, queue)
	st := r.newStats(name, 1, out)
	r.group.Go(func() error {
		defer close(out)
		wctx := workerContext(r.ctx, st, 0)
		var seq int64
		for {
			select {
			case <-r.stop:
				return nil
			default:
			}
			if err := window.take(r.ctx, st, 0); err != nil {
				return err
			}
			t0 := st.Begin(0)
			it, err := nextItem(wctx, src)
			d := st.End(0, t0)
			switch {
			case err == io.EOF:
				return nil
			case err != nil:
				if shardErr, ok := AsShardError(err); ok && r.policy == Skip {
					r.skips.addShard(shardErr)
					window.Done()
					continue
				}
				if se, ok := AsSampleError(err); ok && r.policy == Skip {
					if se.Stage == "" {
						se.Stage = name
					}
					it = &Item{Meta: se.Meta, Skip: se}
					r.skips.add(se)
					st.Skipped.Add(1)
				} else {
					if r.ctx.Err() != nil {
						return r.ctx.Err()
					}
					return fmt.Errorf("%s: %w", name, err)
				}
			}
			st.observe(d)
			st.Out.Add(1)
			it.Seq = seq
			seq++
			if err := send(r.ctx, out, it, st, 0); err != nil {
				return err
			}
		}
	})
	return out
}

// Stage starts workers goroutines that apply fn to every item from in and send the results
// into a queue of the given capacity. Items already skipped pass through untouched.
func (r *Run) Stage(name string, workers, queue int, in <-chan *Item, fn StageFunc) <-chan *Item {
	if workers < 1 {
		workers = 1
	}
	out := make(chan *Item, queue)
	st := r.newStats(name, workers, out)
	st.Parallel = true
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := range workers {
		r.group.Go(func() error {
			defer wg.Done()
			wctx := workerContext(r.ctx, st, w)
			for {
				it, ok, err := receive(r.ctx, in, st, w)
				if err != nil || !ok {
					return err
				}
				if it.Skip == nil {
					if err := r.apply(wctx, name, st, w, fn, it); err != nil {
						return err
					}
				} else {
					st.In.Add(1)
				}
				if err := send(r.ctx, out, it, st, w); err != nil {
					return err
				}
			}
		})
	}
	r.group.Go(func() error { wg.Wait(); close(out); return nil })
	return out
}

// Step is one parallel stage of a pipeline as a value: Workers goroutines running the function
// Make builds against the run's budget (a stage takes its buffers from its own account). A list
// of steps is the graph between a source and its consumer: Chain runs it, WindowSize bounds it.
type Step struct {
	Name    string
	Workers int
	Make    func(*Budget) StageFunc
}

// Chain starts the steps in order, the first reading from in, each with an output queue of
// the given capacity, and returns the last one's output.
func (r *Run) Chain(in <-chan *Item, queue int, b *Budget, steps []Step) <-chan *Item {
	for _, s := range steps {
		in = r.Stage(s.Name, s.Workers, queue, in, s.Make(b))
	}
	return in
}

// WindowSize is the Window that covers every item between a source with the given queue and
// the consumer of the steps: the source's queue and, per step, its queue and two items per
// worker (the one in its call, and one of slack that the first sizing allowed and runs since
// have kept).
func WindowSize(queue int, steps []Step) int {
	n := queue
	for _, s := range steps {
		n += 2*s.Workers + queue
	}
	return n
}

// Consume runs fn on every item from in, on one goroutine (the batcher, a sink). fn sees
// skipped items too, so it can keep order and counts; skipping them is its business. done, if
// not nil, is called once when the goroutine ends, whatever the reason: with a nil error after
// the last item (its error is then the stage's), or with the error that ended the stage, for
// cleanup only. An fn that waits for room downstream itself says so with WaitDownstream on the
// context it is given, so that the wait counts as blocked, not busy.
func (r *Run) Consume(name string, in <-chan *Item, fn func(ctx context.Context, it *Item) error, done func(ctx context.Context, err error) error) {
	consume(r, r.newStats(name, 1, nil), in, func(it *Item) string { return it.Meta.String() }, fn, done)
}

// Drain is Consume for the last stage of a run, fed a queue of any type (the job's batches for
// the sink): it is counted, timed and protected from panics like every stage, and reports in
// as its queue.
func Drain[T any](r *Run, name string, in <-chan T, fn func(ctx context.Context, v T) error, done func(ctx context.Context, err error) error) {
	consume(r, r.Track(name, 1, func() int { return len(in) }, cap(in)), in, nil, fn, done)
}

// consume is the loop of Consume and Drain; label names a value in a panic's message.
func consume[T any](r *Run, st *StageStats, in <-chan T, label func(T) string, fn func(ctx context.Context, v T) error, done func(ctx context.Context, err error) error) {
	r.group.Go(func() (err error) {
		wctx := workerContext(r.ctx, st, 0)
		if done != nil {
			defer func() {
				if derr := done(r.ctx, err); err == nil {
					err = derr
				}
			}()
		}
		for {
			v, ok, err := receive(r.ctx, in, st, 0)
			if err != nil || !ok {
				return err
			}
			st.In.Add(1)
			t0 := st.Begin(0)
			err = protect(st.Name, func() string {
				if label == nil {
					return ""
				}
				return label(v)
			}, func() error { return fn(wctx, v) })
			d := st.End(0, t0)
			if err != nil {
				return err
			}
			st.observe(d)
			st.Out.Add(1)
		}
	})
}

// apply runs fn on it as worker w (whose context is wctx), applying the error policy.
func (r *Run) apply(wctx context.Context, name string, st *StageStats, w int, fn StageFunc, it *Item) error {
	st.In.Add(1)
	t0 := st.Begin(w)
	err := protect(name, func() string { return it.Meta.String() }, func() error { return fn(wctx, it) })
	st.observe(st.End(w, t0))
	if err == nil {
		st.Out.Add(1)
		return nil
	}
	se, ok := AsSampleError(err)
	if !ok {
		it.Release()
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		return fmt.Errorf("%s: %s: %w", name, it.Meta, err)
	}
	if se.Stage == "" {
		se.Stage = name
	}
	if se.Meta.Key == "" {
		se.Meta = it.Meta
	}
	it.Release()
	if r.policy != Skip {
		return se
	}
	it.Skip = se
	r.skips.add(se)
	st.Skipped.Add(1)
	return nil
}

// protect turns a panic in fn into an error that names the stage and the sample (what says
// which): a panic is a bug, so it stops the run whatever the policy.
func protect(stage string, what func() string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if sample := what(); sample != "" {
				err = fmt.Errorf("%s: %s: %s: %v\n%s", stage, sample, ReasonPanic, p, debug.Stack())
			} else {
				err = fmt.Errorf("%s: %s: %v\n%s", stage, ReasonPanic, p, debug.Stack())
			}
		}
	}()
	return fn()
}

// nextItem is src.Next with a panic turned into an error, as protect does for the stages: the
// run then ends with its summary instead of the process crashing.
func nextItem(ctx context.Context, src Source) (it *Item, err error) {
	defer func() {
		if p := recover(); p != nil {
			it, err = nil, fmt.Errorf("%s: %v\n%s", ReasonPanic, p, debug.Stack())
		}
	}()
	return src.Next(ctx)
}

// receive takes the next value from in for worker w of st, counting a wait as starved.
func receive[T any](ctx context.Context, in <-chan T, st *StageStats, w int) (T, bool, error) {
	select {
	case it, ok := <-in:
		return it, ok, nil
	default:
	}
	st.BeginStarved(w)
	defer st.EndStarved(w)
	select {
	case it, ok := <-in:
		return it, ok, nil
	case <-ctx.Done():
		var none T
		return none, false, ctx.Err()
	}
}

// send hands it on for worker w of st, counting a wait for room as blocked.
func send(ctx context.Context, out chan<- *Item, it *Item, st *StageStats, w int) error {
	select {
	case out <- it:
		return nil
	default:
	}
	st.startWait(&st.blockedSince[w])
	defer st.endWait(&st.blockedSince[w], &st.BlockedNs)
	select {
	case out <- it:
		return nil
	case <-ctx.Done():
		it.Release()
		return ctx.Err()
	}
}

// IsCancel reports whether err only says that the run was stopped.
func IsCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Window bounds the number of items between a source and its final consumer.
type Window struct{ slots chan struct{} }

// NewWindow makes a window of n slots.
func NewWindow(n int) *Window { return &Window{slots: make(chan struct{}, n)} }

// Size is the number of slots.
func (w *Window) Size() int { return cap(w.slots) }

func (w *Window) take(ctx context.Context, st *StageStats, worker int) error {
	if w == nil {
		return nil
	}
	select {
	case w.slots <- struct{}{}:
		return nil
	default:
	}
	st.startWait(&st.blockedSince[worker])
	defer st.endWait(&st.blockedSince[worker], &st.BlockedNs)
	select {
	case w.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done gives back the slot of one item that left the pipeline.
func (w *Window) Done() {
	if w != nil {
		<-w.slots
	}
}
