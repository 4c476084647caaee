package augment

import (
	"math"

	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// OpCrop is torchvision's RandomResizedCrop: it always runs, first, and sets the view's size.
const OpCrop = "random_resized_crop"

// cropAttempts is how many random boxes RandomResizedCrop tries before its central fallback.
const cropAttempts = 10

// cropParams is a compiled crop: the area fraction and aspect ratio ranges.
type cropParams struct{ scale, ratio [2]float64 }

var _ = register(&opType{
	name:   OpCrop,
	fields: []string{"scale", "ratio"},
	always: true,
	compile: func(spec OpSpec) (sampler, error) {
		var c cropParams
		var err error
		if c.scale, err = pair(spec.Scale, [2]float64{0.08, 1}); err != nil {
			return nil, fieldError("scale", err)
		}
		if c.ratio, err = pair(spec.Ratio, [2]float64{3.0 / 4, 4.0 / 3}); err != nil {
			return nil, fieldError("ratio", err)
		}
		return c, nil
	},
	// The flip is done by the resize: every later op commutes with it exactly (colour ops
	// are per pixel or use the mean, and the blur's box passes are symmetric). It is counted
	// as part of the crop's time.
	render: func(v *viewBuffers, p *pipeline.ViewParams) error {
		t := v.stats.start()
		if err := ops.ResizedCropFlip(v.dst, v.src, p.Crop, p.Flip, v.scratch); err != nil {
			return err
		}
		v.flipped = p.Flip
		v.stats.stop(OpCrop, t)
		return nil
	},
})

func (c cropParams) sample(r *viewRNG, _ float64, w, h int, rec *viewRecord) {
	rec.params.Crop = sampleCrop(r, w, h, c.scale, c.ratio)
}

// sampleCrop draws RandomResizedCrop's box on a w x h image as torchvision does: up to 10
// tries of an area fraction uniform in scale and a log-uniform aspect ratio in ratio, sides
// rounded half to even, position uniform; else the whole image centre-cropped to the nearest
// allowed aspect ratio.
func sampleCrop(r *viewRNG, w, h int, scale, ratio [2]float64) pipeline.Crop {
	area := float64(w * h)
	logLo, logHi := math.Log(ratio[0]), math.Log(ratio[1])
	for range cropAttempts {
		target := area * r.Uniform(scale[0], scale[1])
		aspect := math.Exp(r.Uniform(logLo, logHi))
		cw := int(math.RoundToEven(math.Sqrt(target * aspect)))
		ch := int(math.RoundToEven(math.Sqrt(target / aspect)))
		if 0 < cw && cw <= w && 0 < ch && ch <= h {
			top := r.IntIn(0, h-ch)
			left := r.IntIn(0, w-cw)
			return pipeline.Crop{Top: top, Left: left, Height: ch, Width: cw}
		}
	}
	inRatio := float64(w) / float64(h)
	cw, ch := w, h
	// At least one pixel: a ratio range far from square can round a side of a thin image to 0,
	// where torchvision's crop would fail. The default range never comes near.
	switch {
	case inRatio < ratio[0]:
		ch = max(1, int(math.RoundToEven(float64(cw)/ratio[0])))
	case inRatio > ratio[1]:
		cw = max(1, int(math.RoundToEven(float64(ch)*ratio[1])))
	}
	return pipeline.Crop{Top: (h - ch) / 2, Left: (w - cw) / 2, Height: ch, Width: cw}
}
