package augment

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// opType is one augmentation op, registered by its name (the `op:` of a recipe step). Each op
// lives in its own file (op_*.go): it reads its own fields of an OpSpec, samples its random
// parameters for a view into the view's pipeline.ViewParams, and renders them. See README.md,
// "Adding an op".
type opType struct {
	name string
	// fields are the OpSpec fields (by YAML key) the op reads besides p and p_views; a step
	// that sets any other field is refused.
	fields []string
	// always is set for an op that runs on every view (the crop): p and p_views are refused.
	always bool
	// timers are the names of the op's time counters, in report order (OpStats); most ops
	// have one, their own name.
	timers []string
	// compile checks the op's fields of spec and returns the sampler of its parameters; its
	// errors start with the field, as fieldError makes them.
	compile func(spec OpSpec) (sampler, error)
	// render applies the op as p says to the view v.
	render func(v *viewBuffers, p *pipeline.ViewParams) error
}

// sampler draws an op's parameters for one view of a w x h image into rec.params, given the
// op's probability for that view. It must draw from r in the same order every time: the draws
// are the view's reproducible randomness.
type sampler interface {
	sample(r *viewRNG, prob float64, w, h int, rec *viewRecord)
}

// sampleFunc is a sampler that needs no compiled state of its own.
type sampleFunc func(r *viewRNG, prob float64, w, h int, rec *viewRecord)

func (f sampleFunc) sample(r *viewRNG, prob float64, w, h int, rec *viewRecord) {
	f(r, prob, w, h, rec)
}

// coin compiles an op that runs on a view with probability p and records in one boolean of
// pipeline.ViewParams whether it did (grayscale, flip, solarize): it runs when u < p, as
// torchvision's RandomGrayscale and RandomHorizontalFlip decide.
func coin(flag func(*pipeline.ViewParams) *bool) func(OpSpec) (sampler, error) {
	return func(OpSpec) (sampler, error) {
		return sampleFunc(func(r *viewRNG, prob float64, _, _ int, rec *viewRecord) {
			*flag(&rec.params) = r.Float64() < prob
		}), nil
	}
}

// fieldError is a compile error about the op's field name.
func fieldError(name string, err error) error { return fmt.Errorf(".%s: %w", name, err) }

// viewBuffers is what render works on: the view being made (dst, already sized p.Size), the
// decoded image it comes from, kernel scratch and the op timers (nil: untimed).
type viewBuffers struct {
	dst, src pipeline.Image
	scratch  *ops.Scratch
	stats    *opStats
	flipped  bool // the crop resized with the flip already applied
}

var registry = map[string]*opType{}

// register adds an op; a second op of the same name is a programming error.
func register(op *opType) *opType {
	if _, dup := registry[op.name]; dup {
		panic("augment: op " + op.name + " registered twice")
	}
	if len(op.timers) == 0 {
		op.timers = []string{op.name}
	}
	registry[op.name] = op
	return op
}

// replayOrder is the order Replay applies ops in and the order of the parity vectors: MoCo
// v2's, then solarize (BYOL), then any other op by name.
var replayOrder = sync.OnceValue(func() []string {
	order := []string{OpCrop, OpJitter, OpGrayscale, OpBlur, OpFlip, OpSolarize}
	var rest []string
	for name := range registry {
		if !slices.Contains(order, name) {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	return append(order, rest...)
})

// timerNames lists every op timer in report order: the ops' timers in replay order.
var timerNames = sync.OnceValue(func() []string {
	var names []string
	for _, op := range replayOrder() {
		names = append(names, registry[op].timers...)
	}
	return names
})

// render makes the view p describes from v.src into v.dst (already sized p.Size), running the
// ops in order; v.stats, when not nil, times each op. The caller owns v (a worker keeps one),
// so that rendering allocates nothing.
func render(v *viewBuffers, p *pipeline.ViewParams, order []string) error {
	if v.dst.Height != p.Size[0] || v.dst.Width != p.Size[1] {
		return fmt.Errorf("view buffer is %dx%d, params say %dx%d (height x width)",
			v.dst.Height, v.dst.Width, p.Size[0], p.Size[1])
	}
	v.flipped = false
	for _, name := range order {
		op, ok := registry[name]
		if !ok {
			return fmt.Errorf("unknown op %q", name)
		}
		if err := op.render(v, p); err != nil {
			return err
		}
	}
	return nil
}

// timed runs fn under the op timer name when the view is timed.
func (v *viewBuffers) timed(name string, fn func()) {
	t := v.stats.start()
	fn()
	v.stats.stop(name, t)
}
