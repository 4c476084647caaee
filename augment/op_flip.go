package augment

import (
	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// OpFlip is torchvision's RandomHorizontalFlip.
const OpFlip = "hflip"

var _ = register(&opType{
	name:    OpFlip,
	compile: coin(func(p *pipeline.ViewParams) *bool { return &p.Flip }),
	// Usually the crop has flipped the view already, as it resized it (op_crop.go).
	render: func(v *viewBuffers, p *pipeline.ViewParams) error {
		if p.Flip && !v.flipped {
			v.timed(OpFlip, func() { ops.FlipHorizontal(v.dst) })
		}
		return nil
	},
})
