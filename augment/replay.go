package augment

import (
	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// Replay renders the view that p describes from src, in MoCo v2's op order (crop+resize,
// jitter in p.Jitter.Order, grayscale, blur, flip, then solarize if set). It is what the
// parity vectors and `pipeline augment --params` check.
func Replay(src pipeline.Image, p pipeline.ViewParams) (pipeline.Image, error) {
	dst := ops.NewImage(p.Size[1], p.Size[0])
	if err := render(&viewBuffers{dst: dst, src: src, scratch: new(ops.Scratch)}, &p, replayOrder()); err != nil {
		return pipeline.Image{}, err
	}
	return dst, nil
}
