package augment

import (
	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// OpSolarize is BYOL's and DINO's RandomSolarization.
const OpSolarize = "solarize"

// solarizeThreshold is BYOL's 0.5 and DINO's PIL default 128 on 8-bit samples.
const solarizeThreshold = 128

var _ = register(&opType{
	name:    OpSolarize,
	compile: coin(func(p *pipeline.ViewParams) *bool { return &p.Solarize }),
	render: func(v *viewBuffers, p *pipeline.ViewParams) error {
		if p.Solarize {
			v.timed(OpSolarize, func() { ops.Solarize(v.dst, solarizeThreshold) })
		}
		return nil
	},
})
