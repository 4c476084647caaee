package job

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"pipeline/pipeline"
	"pipeline/stages/decode"
	"pipeline/stages/source"
)

// The job's parallel stages (Job.steps), which RunIsolated can run alone.
const (
	StageDecode  = "decode"
	StageAugment = "augment"
)

// DefaultIsolateCache is how many samples RunIsolated keeps in memory to replay.
const DefaultIsolateCache = 64

// RunIsolated measures one stage alone ("decode" or "augment"), without I/O or the cost of the
// stages around it. It first takes the first cache samples through the stages before it (read;
// read and decode for augment) and keeps their output in memory, outside the budget; then it
// replays them in a loop, each round as a new epoch so that augmentation draws new views,
// into the stage with its configured workers, and drops what comes out. Replaying copies each
// cached sample into a budget buffer, a memcpy next to a decode or an augmentation.
//
// opt.Duration, MaxSamples, Stop and OnStart apply; Sink, Start and OnDelivered do not. The
// summary's stages are replay, the stage, and drop; Emitted counts the samples it processed.
func (j *Job) RunIsolated(ctx context.Context, stage string, cache int, opt Options) (*Summary, error) {
	steps := j.steps()
	at := slices.IndexFunc(steps, func(s pipeline.Step) bool { return s.Name == stage })
	if at < 0 {
		var names []string
		for _, s := range steps {
			names = append(names, s.Name)
		}
		return nil, fmt.Errorf("cannot isolate stage %q: want %s", stage, strings.Join(names, " or "))
	}
	if cache < 1 {
		cache = DefaultIsolateCache
	}
	budget := pipeline.NewBudget(j.Split)
	samples, err := j.cacheSamples(ctx, stage, steps[:at], cache, budget)
	if err != nil {
		return nil, err
	}

	r := pipeline.NewRun(ctx, pipeline.OnError(j.Config.OnError))
	if opt.NoTiming {
		r.DisableTiming()
	}
	w := j.Workers
	var limited pipeline.Source = &replaySource{samples: samples, budget: budget}
	if opt.MaxSamples > 0 {
		limited = &limitSource{Source: limited, left: opt.MaxSamples}
	}
	in := r.Source("replay", limited, w.Queue, nil)
	out := r.Chain(in, w.Queue, budget, steps[at:at+1])
	var emitted int64
	r.Consume("drop", out, func(ctx context.Context, it *pipeline.Item) error {
		if it.Skip == nil {
			emitted++
		}
		it.Release()
		return nil
	}, nil)
	if opt.OnStart != nil {
		opt.OnStart(r, budget)
	}
	stopped, elapsed, runErr := waitForEnd(r, opt)
	if lim, ok := limited.(*limitSource); ok && lim.left == 0 && stopped == "" {
		stopped = "limit"
	}
	s := &Summary{Emitted: emitted, Skipped: r.Skips(), Seconds: elapsed.Seconds(), Stopped: stopped,
		MemoryBudget: j.Split.Total(), MemoryPeak: budget.Peak(), Decoder: decode.Backend()}
	s.addStages(r, elapsed)
	return s, runErr
}

// cachedSample is one sample as the isolated stage takes it: encoded bytes for decode, pixels
// for augment.
type cachedSample struct {
	meta    pipeline.Meta
	encoded []byte
	image   pipeline.Image
}

// cacheSamples reads the first n good samples of the source through the steps before the
// isolated stage (none for decode; decode for augment). Bad samples are left out, as the skip
// policy would.
func (j *Job) cacheSamples(ctx context.Context, stage string, before []pipeline.Step, n int, budget *pipeline.Budget) ([]cachedSample, error) {
	src, err := source.Open(j.Source, source.Options{Seed: j.Config.Seed, Epochs: 1, Account: budget.Encoded})
	if err != nil {
		return nil, err // source's errors name it
	}
	defer src.Close()
	var fns []pipeline.StageFunc
	for _, s := range before {
		fns = append(fns, s.Make(budget))
	}
	var out []cachedSample
	for len(out) < n {
		it, err := src.Next(ctx)
		if err == io.EOF {
			break
		}
		if _, bad := pipeline.AsSampleError(err); bad {
			continue
		}
		if _, bad := pipeline.AsShardError(err); bad {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		bad, err := runInline(ctx, before, fns, it)
		if err != nil {
			return nil, err
		}
		if bad {
			continue
		}
		c := cachedSample{meta: it.Meta}
		if it.Image.Pix == nil {
			c.encoded = append([]byte(nil), it.Encoded...)
		} else {
			c.image = pipeline.Image{Width: it.Image.Width, Height: it.Image.Height,
				Pix: append([]uint8(nil), it.Image.Pix...)}
		}
		it.Release()
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("source: no good sample to replay into %s", stage)
	}
	return out, nil
}

// runInline applies the steps' functions to it in order on this goroutine. A bad sample is
// released and reported as bad; any other error names the step and the sample.
func runInline(ctx context.Context, steps []pipeline.Step, fns []pipeline.StageFunc, it *pipeline.Item) (bad bool, err error) {
	for i, fn := range fns {
		if err := fn(ctx, it); err != nil {
			it.Release()
			if _, isBad := pipeline.AsSampleError(err); isBad {
				return true, nil
			}
			return false, fmt.Errorf("%s %s: %w", steps[i].Name, it.Meta, err)
		}
	}
	return false, nil
}

// replaySource yields the cached samples over and over, each round as the next epoch, in
// buffers charged to the budget like the source's and decoder's own.
type replaySource struct {
	samples []cachedSample
	budget  *pipeline.Budget
	next    int64
}

func (s *replaySource) Next(ctx context.Context) (*pipeline.Item, error) {
	c := s.samples[s.next%int64(len(s.samples))]
	it := &pipeline.Item{Meta: c.meta}
	it.Epoch = int(s.next / int64(len(s.samples)))
	s.next++
	if c.encoded != nil {
		buf, err := s.budget.Encoded.Alloc(ctx, it, len(c.encoded))
		if err != nil {
			return nil, err
		}
		copy(buf, c.encoded)
		it.Encoded = buf
		return it, nil
	}
	buf, err := s.budget.Decoded.Alloc(ctx, it, len(c.image.Pix))
	if err != nil {
		return nil, err
	}
	copy(buf, c.image.Pix)
	it.Image = pipeline.Image{Width: c.image.Width, Height: c.image.Height, Pix: buf}
	return it, nil
}
