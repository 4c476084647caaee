package augment

import (
	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// OpGrayscale is torchvision's RandomGrayscale.
const OpGrayscale = "grayscale"

var _ = register(&opType{
	name:    OpGrayscale,
	compile: coin(func(p *pipeline.ViewParams) *bool { return &p.Grayscale }),
	render: func(v *viewBuffers, p *pipeline.ViewParams) error {
		if p.Grayscale {
			v.timed(OpGrayscale, func() { ops.Grayscale(v.dst) })
		}
		return nil
	},
})
