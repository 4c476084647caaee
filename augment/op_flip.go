package augment

import (
	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// OpFlip is torchvision's RandomHorizontalFlip.
const OpFlip = "hflip"

var _ = register(&opType{
	name: OpFlip,
	compile: func(OpSpec) (sampler, error) {
		return sampleFunc(func(r *viewRNG, prob float64, _, _ int, rec *viewRecord) {
			rec.params.Flip = r.Float64() < prob
		}), nil
	},
	// Usually the crop has flipped the view already, as it resized it (op_crop.go).
	render: func(v *viewBuffers, p *pipeline.ViewParams) error {
		if p.Flip && !v.flipped {
			v.timed(OpFlip, func() { ops.FlipHorizontal(v.dst) })
		}
		return nil
	},
})
