package augment

import (
	"fmt"
	"math"

	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// OpJitter is torchvision's ColorJitter, wrapped in RandomApply; its four parts are timed one
// by one under their own names.
const (
	OpJitter     = "color_jitter"
	OpBrightness = "brightness"
	OpContrast   = "contrast"
	OpSaturation = "saturation"
	OpHue        = "hue"
)

// jitterNames is torchvision's index order of the four ColorJitter ops.
var jitterNames = [4]string{OpBrightness, OpContrast, OpSaturation, OpHue}

// jitterParams is a compiled jitter: the range of each factor.
type jitterParams struct {
	brightness, contrast, saturation, hue span
}

// span is a jitter factor range; on is false for the identity range, which disables the op.
type span struct {
	lo, hi float64
	on     bool
}

var _ = register(&opType{
	name:   OpJitter,
	fields: []string{"brightness", "contrast", "saturation", "hue"},
	timers: jitterNames[:],
	compile: func(spec OpSpec) (sampler, error) {
		var j jitterParams
		for _, f := range []struct {
			name string
			r    *Range
			dst  *span
			hue  bool
		}{
			{"brightness", spec.Brightness, &j.brightness, false},
			{"contrast", spec.Contrast, &j.contrast, false},
			{"saturation", spec.Saturation, &j.saturation, false},
			{"hue", spec.Hue, &j.hue, true},
		} {
			var err error
			if *f.dst, err = jitterSpan(f.r, f.hue); err != nil {
				return nil, fieldError(f.name, err)
			}
		}
		return j, nil
	},
	render: func(v *viewBuffers, p *pipeline.ViewParams) error {
		if p.Jitter == nil {
			return nil
		}
		return jitter(v.dst, p.Jitter, v.scratch, v.stats)
	},
})

// sample is RandomApply around ColorJitter: the op runs unless prob < u.
func (jp jitterParams) sample(r *viewRNG, prob float64, _, _ int, rec *viewRecord) {
	if r.Float64() <= prob {
		sampleJitter(r, &jp, &rec.jitter, rec.order[:])
		rec.params.Jitter = &rec.jitter
	}
}

// sampleJitter draws ColorJitter's parameters as torchvision >= 0.8 does: a random
// permutation of the four ops, then the factors in the fixed order b, c, s, h. Disabled ops
// (identity range) draw nothing and stay out of the order. order must have room for 4.
func sampleJitter(r *viewRNG, st *jitterParams, j *pipeline.Jitter, order []string) {
	perm := [4]int{0, 1, 2, 3}
	for i := 3; i > 0; i-- { // Fisher-Yates
		k := r.IntIn(0, i)
		perm[i], perm[k] = perm[k], perm[i]
	}
	*j = pipeline.Jitter{Brightness: 1, Contrast: 1, Saturation: 1}
	if st.brightness.on {
		j.Brightness = r.Uniform(st.brightness.lo, st.brightness.hi)
	}
	if st.contrast.on {
		j.Contrast = r.Uniform(st.contrast.lo, st.contrast.hi)
	}
	if st.saturation.on {
		j.Saturation = r.Uniform(st.saturation.lo, st.saturation.hi)
	}
	if st.hue.on {
		j.Hue = r.Uniform(st.hue.lo, st.hue.hi)
	}
	on := [4]bool{st.brightness.on, st.contrast.on, st.saturation.on, st.hue.on}
	order = order[:0]
	for _, k := range perm {
		if on[k] {
			order = append(order, jitterNames[k])
		}
	}
	j.Order = order
}

func jitter(im pipeline.Image, j *pipeline.Jitter, s *ops.Scratch, stats *opStats) error {
	for _, name := range j.Order {
		t := stats.start()
		switch name {
		case OpBrightness:
			ops.Brightness(im, j.Brightness)
		case OpContrast:
			ops.Contrast(im, j.Contrast)
		case OpSaturation:
			ops.Saturation(im, j.Saturation, s)
		case OpHue:
			ops.Hue(im, j.Hue)
		default:
			return fmt.Errorf("unknown jitter op %q in order %v", name, j.Order)
		}
		stats.stop(name, t)
	}
	return nil
}

// jitterSpan resolves a jitter field as torchvision's ColorJitter does: a strength v means
// [max(0, 1-v), 1+v] (hue: [-v, v]); an absent field or the identity range disables the op.
func jitterSpan(r *Range, hue bool) (span, error) {
	if r == nil {
		return span{}, nil
	}
	lo, hi := r.Lo, r.Hi
	if r.Scalar {
		v := r.Lo
		if v < 0 || math.IsNaN(v) {
			return span{}, fmt.Errorf("strength %v is negative", v)
		}
		if hue {
			lo, hi = -v, v
		} else {
			lo, hi = max(0, 1-v), 1+v
		}
	}
	if !(lo <= hi) || math.IsInf(hi, 0) {
		return span{}, fmt.Errorf("[%v, %v]: want lo <= hi", lo, hi)
	}
	if hue {
		if lo < -0.5 || hi > 0.5 {
			return span{}, fmt.Errorf("[%v, %v]: hue shifts must lie in [-0.5, 0.5]", lo, hi)
		}
		return span{lo, hi, !(lo == 0 && hi == 0)}, nil
	}
	if lo < 0 {
		return span{}, fmt.Errorf("[%v, %v]: factors must not be negative", lo, hi)
	}
	return span{lo, hi, !(lo == 1 && hi == 1)}, nil
}
