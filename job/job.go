// Package job assembles a runnable pipeline from a config: it decodes each component's block,
// sizes the memory budget, wires source -> decode -> augment -> batch -> sink on a
// pipeline.Run, and reports a Summary. `pipeline run`, `profile` and `bench` all build here.
package job

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"pipeline/augment"
	"pipeline/pipeline"
	"pipeline/pipeline/config"
	"pipeline/sink"
	"pipeline/stages/batch"
	"pipeline/stages/decode"
	"pipeline/stages/source"
)

// Job is a validated, sized pipeline, ready to run once.
type Job struct {
	Config     *config.Config
	Source     source.Config
	Recipe     *augment.Recipe
	Batch      batch.Config
	Groups     []batch.GroupShape
	KeepParams bool // record every view's parameters (views.keep_params or batch.keep_params)
	Workers    Workers
	Split      pipeline.BudgetSplit
	Window     int // items in flight between the source and the batcher

	sinkKind string
}

// Workers is the number of goroutines per stage and the queue capacities.
type Workers struct {
	Decode, Augment int
	Queue           int // capacity of each stage's output queue
	BatchesInFlight int // batches queued for or held by the sink, plus the one being built
}

// Build checks the whole config and sizes the pipeline; it opens nothing yet.
func Build(cfg *config.Config) (_ *Job, err error) {
	defer func() { err = cfg.Explain(err) }()
	j := &Job{Config: cfg}
	file := cfg.File()
	if cfg.Source == nil {
		return nil, fmt.Errorf("%s: source: missing (give source.shards, source.folder or source.synthetic)", file)
	}
	if err := config.DecodeNode(file, cfg.Source, &j.Source); err != nil {
		return nil, err
	}
	spec := augment.Spec{}
	if cfg.Views != nil {
		if err := config.DecodeNode(file, cfg.Views, &spec); err != nil {
			return nil, err
		}
	} else {
		spec.Recipe = "mocov2"
	}
	recipe, err := augment.Build(spec)
	if err != nil {
		return nil, config.Errorf(file, cfg.Views, "views: %v", err)
	}
	j.Recipe = recipe
	if err := config.DecodeNode(file, cfg.Batch, &j.Batch); err != nil {
		return nil, err
	}
	if j.Batch.Size == 0 {
		j.Batch.Size = batch.DefaultSize
	}
	j.KeepParams = spec.KeepParams || j.Batch.KeepParams
	j.Batch.KeepParams = j.KeepParams
	j.Batch.Recipe = recipe.Name()
	for _, g := range recipe.Groups() {
		j.Groups = append(j.Groups, batch.GroupShape{Name: g.Name, Views: g.Views, Height: g.Height, Width: g.Width})
	}
	kind, err := sinkKind(cfg)
	if err != nil {
		return nil, err
	}
	j.sinkKind = kind
	if err := checkSink(j, kind); err != nil {
		return nil, err
	}
	j.Workers = defaultWorkers(cfg.Workers)
	if err := j.size(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return j, nil
}

// DefaultWorkersPerCore is how many workers decode and augment each get per core when the
// config does not say. Goroutines that outnumber the cores keep every core busy while some wait
// for input or for room downstream, and the scheduler spins less: on 2 cores, 1 decode and 1
// augment worker made 431-491 MoCo v2 samples/s at 3.5-3.8 ms of CPU a sample, 4 and 4 made
// 614-668 at 2.9-3.1 ms (docs/profiling.md).
const DefaultWorkersPerCore = 2

// defaultWorkers sizes the parallel stages when the config does not.
func defaultWorkers(w config.Workers) Workers {
	cores := runtime.GOMAXPROCS(0)
	out := Workers{Decode: w.Decode, Augment: w.Augment, Queue: w.Queue, BatchesInFlight: 3}
	if out.Decode == 0 {
		out.Decode = DefaultWorkersPerCore * cores
	}
	if out.Augment == 0 {
		out.Augment = DefaultWorkersPerCore * cores
	}
	if out.Queue == 0 {
		// One slot per worker of the larger stage: with 2 workers per core, deeper queues made
		// no difference beyond noise on 2 cores (4 to 32 at 4 and 4 workers), and every slot
		// is a sample held in memory.
		out.Queue = max(out.Decode, out.Augment)
	}
	return out
}

// maxCount bounds worker counts, queues and batch.size: far above any real value, and low
// enough that sizing the budget cannot overflow int64.
const maxCount = 1 << 20

// At least 2 × minImageShare of the budget is left for images, a quarter of it for encoded and
// three quarters for decoded ones (8 and 24 MiB at the least): one worker must be able to hold
// an ImageNet-size image at any time.
const minImageShare = 16 << 20

// size splits memory_budget into the accounts and refuses a config that cannot fit.
//
// Views are charged per sample and at most Window samples are in flight, so the views
// account never blocks (a blocking views account could deadlock the reorder buffer).
// Batches: BatchesInFlight records at a time. What is left goes a quarter to encoded bytes
// and three quarters to decoded pixels, which are the variable-size buffers.
func (j *Job) size() error {
	w := j.Workers
	if w.Decode > maxCount || w.Augment > maxCount || w.Queue > maxCount || j.Batch.Size > maxCount {
		return fmt.Errorf("workers (decode %d, augment %d, queue %d) and batch.size %d must each be at most %d",
			w.Decode, w.Augment, w.Queue, j.Batch.Size, maxCount)
	}
	j.Window = pipeline.WindowSize(w.Queue, j.steps())
	views := j.Recipe.SampleCharge() * int64(j.Window)
	oneBatch := batch.Charge(j.Batch, j.Groups)
	batches := oneBatch * int64(w.BatchesInFlight)
	budget := int64(j.Config.MemoryBudget)
	rest := budget - views - batches
	if rest < 2*minImageShare {
		need := views + batches + 2*minImageShare
		return fmt.Errorf("memory_budget %s cannot fit this pipeline: %d batches of %s (batch.size %d) + "+
			"views of %d samples in flight (%s) + at least %s for images need %s; raise memory_budget "+
			"or lower batch.size or the worker counts",
			config.ByteSize(budget), w.BatchesInFlight, config.ByteSize(oneBatch), j.Batch.Size,
			j.Window, config.ByteSize(views), config.ByteSize(2*minImageShare), config.ByteSize(need))
	}
	j.Split = pipeline.BudgetSplit{Encoded: rest / 4, Decoded: rest - rest/4, Views: views, Batches: batches}
	return nil
}

// Plan says in one line how the job is laid out: workers, queues, the memory split, the batch
// and the sink. `pipeline run` prints it first, so that a log shows what ran.
func (j *Job) Plan() string {
	w := j.Workers
	var groups []string
	for _, g := range j.Groups {
		groups = append(groups, fmt.Sprintf("%s %dx%dx%dx3", g.Name, g.Views, g.Height, g.Width))
	}
	sp := j.Split
	return fmt.Sprintf("plan: workers decode %d, augment %d (GOMAXPROCS %d); queues %d, window %d samples; "+
		"memory %s = encoded %s + decoded %s + views %s + batches %s; batches of %d (%s); sink %s",
		w.Decode, w.Augment, runtime.GOMAXPROCS(0), w.Queue, j.Window,
		config.ByteSize(sp.Total()), config.ByteSize(sp.Encoded), config.ByteSize(sp.Decoded),
		config.ByteSize(sp.Views), config.ByteSize(sp.Batches), j.Batch.Size, strings.Join(groups, ", "), j.sinkPlan())
}

// steps is the job's graph between the source and the batcher, in flow order: Run chains
// them, RunIsolated runs one alone after the ones before it, and the window and the views
// account are sized from them.
func (j *Job) steps() []pipeline.Step {
	dec := decode.Decoder{MaxPixels: j.Config.Decode.MaxPixels}
	return []pipeline.Step{
		{Name: StageDecode, Workers: j.Workers.Decode,
			Make: func(b *pipeline.Budget) pipeline.StageFunc { return dec.Stage(b.Decoded) }},
		{Name: StageAugment, Workers: j.Workers.Augment,
			Make: func(b *pipeline.Budget) pipeline.StageFunc {
				return j.Recipe.Stage(j.Config.Seed, j.KeepParams, b.Views)
			}},
	}
}

// Options change how a job runs without changing its config.
type Options struct {
	// Sink replaces the configured sink (profile and bench use the null sink).
	Sink sink.Sink
	// MaxSamples stops the source after that many samples (0: no limit).
	MaxSamples int64
	// Duration stops the source after that long (0: no limit).
	Duration time.Duration
	// Start resumes the source from a saved position.
	Start *source.Position
	// StartBatches is how many batches of the stream precede Start (the runs resumed from):
	// the count handed to a stateful sink and OnDelivered continues from it.
	StartBatches int64
	// Stop, when it fires, stops the source gracefully: items in flight still reach the sink.
	Stop <-chan struct{}
	// NoTiming turns the runtime's per-item timing off (busy, starved and blocked times and
	// latencies stay zero): only to measure what the timing costs.
	NoTiming bool
	// OnStart is called with the live run once every stage is wired (progress, profiling).
	OnStart func(r *pipeline.Run, b *pipeline.Budget)
	// OnDelivered is called from the sink's goroutine after each batch the sink accepted,
	// with the number of batches of the stream so far (StartBatches plus those the sink
	// accepted) and the source position right after the last of them: the state to save for
	// an exact resume.
	OnDelivered func(batches int64, pos source.Position) error
}

// Run runs the job to the end of its data, a limit, a graceful stop or an error, and returns
// the summary in every case where the pipeline was started.
func (j *Job) Run(ctx context.Context, opt Options) (*Summary, error) {
	budget := pipeline.NewBudget(j.Split)
	srcOpt := source.Options{Seed: j.Config.Seed, Epochs: j.Config.Epochs, Account: budget.Encoded}
	if opt.Start != nil {
		srcOpt.Start = *opt.Start
	}
	// The source opens first, so that one that cannot (a shard pattern that matches nothing)
	// fails before a sink that is costly to open and close: a trainer loads its model and
	// checkpoints again when closed. A trainer that resumes makes the source open once more,
	// at its position.
	src, err := source.Open(j.Source, srcOpt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j.Config.File(), err)
	}
	defer func() {
		if src != nil {
			src.Close()
		}
	}()
	snk := opt.Sink
	if snk == nil {
		if snk, err = openSink(j, j.sinkKind); err != nil {
			return nil, err
		}
	}
	if opt.Start == nil {
		// A trainer that restored a checkpoint knows where its data stopped.
		start, batches, err := resumePosition(snk)
		if err != nil {
			return nil, abort(snk, err)
		}
		if start != nil {
			opt.Start, opt.StartBatches, srcOpt.Start = start, batches, *start
			src.Close()
			if src, err = source.Open(j.Source, srcOpt); err != nil {
				return nil, abort(snk, fmt.Errorf("%s: %w", j.Config.File(), err))
			}
		}
	}
	batcher, err := batch.New(j.Batch, j.Groups, budget.Batches, nil)
	if err != nil {
		return nil, abort(snk, fmt.Errorf("%s: %w", j.Config.File(), err))
	}
	defer batcher.Close()

	r := pipeline.NewRun(ctx, pipeline.OnError(j.Config.OnError))
	if opt.NoTiming {
		r.DisableTiming()
	}
	w := j.Workers
	window := pipeline.NewWindow(j.Window)
	var limited pipeline.Source = src
	if opt.MaxSamples > 0 {
		limited = &limitSource{Source: src, left: opt.MaxSamples}
	}
	read := r.Source("read", limited, w.Queue, window)
	augmented := r.Chain(read, w.Queue, budget, j.steps())

	batcher.OnDrop(r.Skipped)
	batching := &orderedBatches{batcher: batcher, window: window, pos: srcOpt.Start,
		records: make(chan positioned, max(1, w.BatchesInFlight-2))}
	r.Consume("batch", augmented, batching.push, batching.finish)
	records := batching.records
	var delivered deliveredPosition
	delivered.set(srcOpt.Start)
	pipeline.Drain(r, "sink", records, toSink(snk, &delivered, opt.StartBatches, opt.OnDelivered), func(context.Context, error) error {
		for p := range records { // after an error: give back what is still queued
			p.rec.Release()
		}
		return nil
	})

	if opt.OnStart != nil {
		opt.OnStart(r, budget)
	}
	stopped, elapsed, runErr := waitForEnd(r, opt)
	if lim, ok := limited.(*limitSource); ok && lim.left == 0 && stopped == "" {
		stopped = "limit"
	}
	// Bad shards and samples are skipped and the run goes on, but a run of which nothing at all
	// reached the sink has failed, whatever the reasons: the sink hears of it (an arrow-file
	// then keeps what an earlier run wrote).
	if skips := r.Skips(); runErr == nil && stopped == "" && batcher.Stats().Emitted == 0 && !skips.Empty() {
		runErr = fmt.Errorf("%s: no sample reached the sink: %s", j.Config.File(), skips.Brief())
	}
	if f, ok := snk.(sink.Failer); ok && runErr != nil {
		f.Fail(runErr)
	}
	closeErr := snk.Close()

	bs := batcher.Stats()
	s := &Summary{
		Emitted: bs.Emitted, Batches: bs.Batches, Skipped: r.Skips(), Seconds: elapsed.Seconds(),
		Stopped: stopped, Epochs: j.Config.Epochs, MemoryBudget: j.Split.Total(),
		MemoryPeak: budget.Peak(), Sink: snk.Summary(), Decoder: decode.Backend(),
		Position: delivered.get(),
	}
	s.addStages(r, elapsed)
	if runErr != nil {
		return s, runErr
	}
	if closeErr != nil {
		return s, fmt.Errorf("sink: %w", closeErr)
	}
	return s, nil
}

// abort closes a sink the run could not start with, telling it the run failed first (an
// arrow-file sink then leaves an earlier run's file as it was), and returns err.
func abort(snk sink.Sink, err error) error {
	if f, ok := snk.(sink.Failer); ok {
		f.Fail(err)
	}
	snk.Close()
	return err
}

// waitForEnd waits for r to end, stopping its source gracefully when opt.Stop fires or
// opt.Duration has passed; it returns why it stopped early ("signal", "limit" or "") and the
// time the run took.
func waitForEnd(r *pipeline.Run, opt Options) (string, time.Duration, error) {
	var timer <-chan time.Time
	if opt.Duration > 0 {
		t := time.NewTimer(opt.Duration)
		defer t.Stop()
		timer = t.C
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Wait() }()
	stop, stopped := opt.Stop, ""
	for {
		select {
		case err := <-done:
			return stopped, time.Since(start), err
		case <-stop:
			stopped, stop = "signal", nil
			r.StopSource()
		case <-timer:
			stopped, timer = "limit", nil
			r.StopSource()
		}
	}
}

// positioned is a batch with the source position right after its last sample.
type positioned struct {
	rec arrow.RecordBatch
	pos source.Position
}

// deliveredPosition is the position after the last batch the sink accepted: a run resumed
// from it neither repeats nor loses a sample.
type deliveredPosition struct {
	mu  sync.Mutex
	pos source.Position
}

func (d *deliveredPosition) set(p source.Position) { d.mu.Lock(); d.pos = p; d.mu.Unlock() }

func (d *deliveredPosition) get() source.Position { d.mu.Lock(); defer d.mu.Unlock(); return d.pos }

// toSink hands each batch to the sink, in order, with the source position it ends at, and
// records that position once the sink accepted it. A stateful sink hears at once where the
// stream starts (the position delivered holds, after `before` batches), then before each batch
// where it stands after it.
func toSink(snk sink.Sink, delivered *deliveredPosition, before int64, onDelivered func(int64, source.Position) error) func(context.Context, positioned) error {
	var written, accepted int64
	stateful, _ := snk.(sink.Stateful)
	if stateful != nil {
		stateful.SetPipelineState(delivered.get().State(before))
	}
	return func(ctx context.Context, p positioned) error {
		written++
		if stateful != nil {
			stateful.SetPipelineState(p.pos.State(before + written))
		}
		if err := writeProtected(ctx, snk, p.rec); err != nil {
			if pipeline.IsCancel(err) && ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("sink: batch %d: %w", written, err)
		}
		accepted++
		delivered.set(p.pos)
		if onDelivered != nil {
			if err := onDelivered(before+accepted, p.pos); err != nil {
				return fmt.Errorf("saving the state after batch %d: %w", accepted, err)
			}
		}
		return nil
	}
}

// writeProtected turns a panic in the sink into an error, so that the run still ends with
// its summary and a state file that names the last batch the sink accepted.
func writeProtected(ctx context.Context, snk sink.Sink, rec arrow.RecordBatch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %v\n%s", pipeline.ReasonPanic, p, debug.Stack())
		}
	}()
	return snk.Write(ctx, rec)
}

// limitSource stops after a number of samples.
type limitSource struct {
	pipeline.Source
	left int64
}

func (l *limitSource) Next(ctx context.Context) (*pipeline.Item, error) {
	if l.left <= 0 {
		return nil, io.EOF
	}
	it, err := l.Source.Next(ctx)
	if err == nil {
		l.left--
	}
	return it, err
}
