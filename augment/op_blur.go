package augment

import (
	"fmt"
	"math"

	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// OpBlur is MoCo v2's GaussianBlur (PIL's, sigma drawn per view), wrapped in RandomApply.
const OpBlur = "gaussian_blur"

// maxBlurSigma bounds the blur's sigma: wider than any view, and far below the ~1.8e19 at
// which sigma squared overflows float32 and Pillow's box radius becomes NaN.
const maxBlurSigma = MaxViewSide

var _ = register(&opType{
	name:   OpBlur,
	fields: []string{"sigma"},
	compile: func(spec OpSpec) (sampler, error) {
		sigma, err := pair(spec.Sigma, [2]float64{0.1, 2})
		if err != nil {
			return nil, fieldError("sigma", err)
		}
		if sigma[1] > maxBlurSigma {
			return nil, fieldError("sigma", fmt.Errorf("[%v, %v]: want at most %d", sigma[0], sigma[1], maxBlurSigma))
		}
		return sampleFunc(func(r *viewRNG, prob float64, _, _ int, rec *viewRecord) {
			if r.Float64() <= prob { // RandomApply, as MoCo wraps its GaussianBlur
				rec.sigma = r.Uniform(sigma[0], sigma[1])
				rec.params.BlurSigma = &rec.sigma
			}
		}), nil
	},
	render: func(v *viewBuffers, p *pipeline.ViewParams) error {
		if p.BlurSigma == nil {
			return nil
		}
		if sigma := *p.BlurSigma; !(math.Abs(sigma) <= maxBlurSigma) {
			return fmt.Errorf("blur sigma %v: want at most %d", sigma, maxBlurSigma)
		}
		v.timed(OpBlur, func() { ops.GaussianBlur(v.dst, *p.BlurSigma, v.scratch) })
		return nil
	},
})
