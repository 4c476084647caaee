// Package augment turns a decoded image into groups of augmented views: the recipes (MoCo v1
// and v2, SimCLR, BYOL, DINO, or custom ones from YAML), their exact torchvision parameter
// sampling, the deterministic per-view randomness, and the pipeline stage that runs them. The
// pixel kernels live in augment/ops.
package augment

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// Recipe is a compiled, validated list of view groups. It is safe for concurrent use.
type Recipe struct {
	name   string
	groups []group
	stats  opStats
}

// GroupInfo describes one view group: what the batch stage and the memory budget need.
type GroupInfo struct {
	Name          string
	Views         int
	Height, Width int
}

type group struct {
	name          string
	key           uint64 // groupKey(name), mixed into every view's seed
	views         int
	height, width int
	steps         []step
	order         []string // the ops in step order, for render
}

// step is one compiled op of a group: the op, its probability (per view number when pViews
// says), and the sampler of its parameters.
type step struct {
	op      *opType
	p       float64
	pViews  []float64
	sampler sampler
}

func (s *step) prob(view int) float64 {
	if view < len(s.pViews) {
		return s.pViews[view]
	}
	return s.p
}

// MaxViewSide is the largest side a view may have, a limit that catches typos before they
// exhaust memory.
const MaxViewSide = 4096

const maxViewsPerGroup = 64

// Build validates a Spec and compiles it. Errors name the offending field, e.g.
// "groups[0].ops[2].p: 1.5 is outside [0, 1]".
func Build(s Spec) (*Recipe, error) {
	name, specs, err := groupsOf(s)
	if err != nil {
		return nil, err
	}
	r := &Recipe{name: name, stats: newOpStats()}
	seen := map[string]bool{}
	for gi, gs := range specs {
		g, err := compileGroup(gs)
		if err != nil {
			return nil, fmt.Errorf("groups[%d]%s", gi, err)
		}
		if seen[g.name] {
			return nil, fmt.Errorf("groups[%d].name: %q used twice", gi, g.name)
		}
		seen[g.name] = true
		r.groups = append(r.groups, g)
	}
	return r, nil
}

// compileGroup checks one group; its errors start with the field path below the group.
func compileGroup(gs GroupSpec) (group, error) {
	g := group{name: gs.Name, key: groupKey(gs.Name), views: gs.Views}
	if g.name == "" {
		return g, fmt.Errorf(".name: missing")
	}
	if g.views == 0 {
		g.views = 1
	}
	if g.views < 1 || g.views > maxViewsPerGroup {
		return g, fmt.Errorf(".views: %d, want 1 to %d", g.views, maxViewsPerGroup)
	}
	if gs.Size == nil {
		return g, fmt.Errorf(".size: missing")
	}
	g.height, g.width = gs.Size.Height, gs.Size.Width
	if g.height < 1 || g.width < 1 || g.height > MaxViewSide || g.width > MaxViewSide {
		return g, fmt.Errorf(".size: %dx%d, want sides of 1 to %d", g.height, g.width, MaxViewSide)
	}
	if len(gs.Ops) == 0 || gs.Ops[0].Op != OpCrop {
		return g, fmt.Errorf(".ops[0]: the first op must be %s (it sets the view's size)", OpCrop)
	}
	used := map[string]bool{}
	for i, os := range gs.Ops {
		st, err := compileStep(os)
		if err != nil {
			return g, fmt.Errorf(".ops[%d]%s", i, err)
		}
		if used[st.op.name] {
			return g, fmt.Errorf(".ops[%d].op: %s appears twice", i, st.op.name)
		}
		used[st.op.name] = true
		g.steps = append(g.steps, st)
		g.order = append(g.order, st.op.name)
	}
	return g, nil
}

// compileStep looks the op up by name and compiles it; its errors start with the field path
// below the step.
func compileStep(os OpSpec) (step, error) {
	op, ok := registry[os.Op]
	switch {
	case os.Op == "":
		return step{}, fmt.Errorf(".op: missing")
	case !ok:
		return step{}, fmt.Errorf(".op: unknown op %q; known: %s", os.Op, strings.Join(replayOrder(), ", "))
	}
	st := step{op: op, p: 1}
	for _, f := range os.setFields() {
		if !slices.Contains(op.fields, f) {
			return st, fmt.Errorf(".%s: not a parameter of %s", f, op.name)
		}
	}
	if os.P != nil {
		if op.always {
			return st, fmt.Errorf(".p: %s always runs", op.name)
		}
		st.p = *os.P
		if err := checkProb(st.p); err != nil {
			return st, fmt.Errorf(".p: %w", err)
		}
	}
	for i, p := range os.PViews {
		if op.always {
			return st, fmt.Errorf(".p_views: %s always runs", op.name)
		}
		if err := checkProb(p); err != nil {
			return st, fmt.Errorf(".p_views[%d]: %w", i, err)
		}
	}
	st.pViews = os.PViews
	var err error
	if st.sampler, err = op.compile(os); err != nil {
		return st, err
	}
	return st, nil
}

func checkProb(p float64) error {
	if !(p >= 0 && p <= 1) {
		return fmt.Errorf("%v is outside [0, 1]", p)
	}
	return nil
}

// pair checks a [lo, hi] range of positive numbers; a nil slice takes def.
func pair(v []float64, def [2]float64) ([2]float64, error) {
	if v == nil {
		return def, nil
	}
	if len(v) != 2 {
		return def, fmt.Errorf("want [lo, hi], got %d numbers", len(v))
	}
	if !(v[0] > 0 && v[0] <= v[1]) || math.IsInf(v[1], 0) {
		return def, fmt.Errorf("[%v, %v]: want 0 < lo <= hi", v[0], v[1])
	}
	return [2]float64{v[0], v[1]}, nil
}

// Name is the recipe's name ("custom" for a spelled-out one).
func (r *Recipe) Name() string { return r.name }

// Groups describes the view groups, in output order.
func (r *Recipe) Groups() []GroupInfo {
	out := make([]GroupInfo, len(r.groups))
	for i, g := range r.groups {
		out[i] = GroupInfo{Name: g.name, Views: g.views, Height: g.height, Width: g.width}
	}
	return out
}

// ViewBytes is the size of all views of one sample.
func (r *Recipe) ViewBytes() int64 {
	var n int64
	for _, g := range r.groups {
		n += int64(g.views) * int64(g.height) * int64(g.width) * 3
	}
	return n
}

// SampleCharge is what Stage charges its account for one sample: each view is one pooled
// buffer, charged at its size class. The job sizes the views account from it.
func (r *Recipe) SampleCharge() int64 {
	var n int64
	for _, g := range r.groups {
		n += int64(g.views) * int64(pipeline.SizeClass(g.height*g.width*3))
	}
	return n
}

// OpStats reports the time spent in each op so far, over every view this recipe made.
func (r *Recipe) OpStats() []OpStat { return r.stats.snapshot() }

// SampleParams draws the parameters of every view of the sample (epoch, index) on a w x h
// image without rendering anything: the same parameters Stage and Views use.
func (r *Recipe) SampleParams(seed uint64, epoch int, index int64, w, h int) [][]pipeline.ViewParams {
	out := make([][]pipeline.ViewParams, len(r.groups))
	var rec viewRecord
	for gi := range r.groups {
		g := &r.groups[gi]
		out[gi] = make([]pipeline.ViewParams, g.views)
		for v := range g.views {
			rng := newViewRNG(seed, epoch, index, g.key, v)
			g.sampleView(&rng, v, w, h, &rec)
			out[gi][v] = rec.clone()
		}
	}
	return out
}

// ReplayGroup renders p with the op order of the named group (MoCo v1 turns grey before its
// jitter; every other recipe's order gives the same pixels as Replay).
func (r *Recipe) ReplayGroup(src pipeline.Image, groupName string, p pipeline.ViewParams) (pipeline.Image, error) {
	for i := range r.groups {
		if r.groups[i].name == groupName {
			dst := ops.NewImage(p.Size[1], p.Size[0])
			err := render(&viewBuffers{dst: dst, src: src, scratch: new(ops.Scratch)}, &p, r.groups[i].order)
			return dst, err
		}
	}
	return pipeline.Image{}, fmt.Errorf("recipe %s has no group %q", r.name, groupName)
}

// worker is the per-goroutine state of the stage: kernel scratch, the params record, the
// view's generator and render state (kept here so that making a view allocates nothing).
type worker struct {
	scratch ops.Scratch
	rec     viewRecord
	rng     viewRNG
	view    viewBuffers
}

// alloc hands out view buffers; Views uses plain memory, Stage the budget's views account.
type alloc func(n int) ([]uint8, error)

// makeViews fills the groups of one sample from src.
func (r *Recipe) makeViews(w *worker, seed uint64, m pipeline.Meta, src pipeline.Image, keep bool, get alloc) ([]pipeline.ViewGroup, error) {
	if err := checkImage(src); err != nil {
		return nil, err
	}
	groups := make([]pipeline.ViewGroup, len(r.groups))
	for gi := range r.groups {
		g := &r.groups[gi]
		vg := pipeline.ViewGroup{Name: g.name, Views: make([]pipeline.Image, g.views)}
		if keep {
			vg.Params = make([]pipeline.ViewParams, g.views)
		}
		for v := range g.views {
			w.rng = newViewRNG(seed, m.Epoch, m.Index, g.key, v)
			g.sampleView(&w.rng, v, src.Width, src.Height, &w.rec)
			buf, err := get(g.height * g.width * 3)
			if err != nil {
				return nil, err
			}
			view := pipeline.Image{Width: g.width, Height: g.height, Pix: buf}
			w.view = viewBuffers{dst: view, src: src, scratch: &w.scratch, stats: &r.stats}
			if err := render(&w.view, &w.rec.params, g.order); err != nil {
				return nil, fmt.Errorf("group %s view %d: %w", g.name, v, err)
			}
			vg.Views[v] = view
			if keep {
				vg.Params[v] = w.rec.clone()
			}
		}
		groups[gi] = vg
	}
	return groups, nil
}

func checkImage(im pipeline.Image) error {
	if im.Width <= 0 || im.Height <= 0 || len(im.Pix) < im.Width*im.Height*3 {
		return fmt.Errorf("no decoded image (%dx%d, %d bytes)", im.Width, im.Height, len(im.Pix))
	}
	return nil
}

// Views makes every view of one sample in freshly allocated memory (for tools and tests).
func (r *Recipe) Views(seed uint64, m pipeline.Meta, src pipeline.Image, keepParams bool) ([]pipeline.ViewGroup, error) {
	return r.makeViews(new(worker), seed, m, src, keepParams, func(n int) ([]uint8, error) {
		return make([]uint8, n), nil
	})
}

// Stage returns the augment stage: it fills it.Groups from it.Image with view buffers taken
// from acct, records each view's params when keepParams is set, and then releases the decoded
// image. A view's randomness depends only on (seed, it.Epoch, it.Index, group, view number).
// Workers share nothing but the op counters; each call borrows kernel scratch from a pool, so
// steady-state views allocate no pixel memory outside acct.
func (r *Recipe) Stage(seed uint64, keepParams bool, acct *pipeline.Account) pipeline.StageFunc {
	var pool sync.Pool
	return func(ctx context.Context, it *pipeline.Item) error {
		w, _ := pool.Get().(*worker)
		if w == nil {
			w = new(worker)
		}
		defer pool.Put(w)
		if err := checkImage(it.Image); err != nil {
			return pipeline.Bad(it.Meta, pipeline.ReasonCorrupt, err)
		}
		// Past the check, errors are the budget's (cancelled, or a view larger than the
		// whole views account) or bugs: they stop the run rather than skip a sample.
		groups, err := r.makeViews(w, seed, it.Meta, it.Image, keepParams, func(n int) ([]uint8, error) {
			return acct.Alloc(ctx, it, n)
		})
		if err != nil {
			return fmt.Errorf("augment %s: %w", it.Meta, err)
		}
		it.Groups = groups
		it.ReleaseImage()
		return nil
	}
}
