package augment

import (
	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// OpGrayscale is torchvision's RandomGrayscale.
const OpGrayscale = "grayscale"

var _ = register(&opType{
	name: OpGrayscale,
	compile: func(OpSpec) (sampler, error) {
		return sampleFunc(func(r *viewRNG, prob float64, _, _ int, rec *viewRecord) {
			rec.params.Grayscale = r.Float64() < prob
		}), nil
	},
	render: func(v *viewBuffers, p *pipeline.ViewParams) error {
		if p.Grayscale {
			v.timed(OpGrayscale, func() { ops.Grayscale(v.dst) })
		}
		return nil
	},
})
