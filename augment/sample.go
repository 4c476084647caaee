package augment

import (
	"math"

	"pipeline/pipeline"
)

// cropAttempts is how many random boxes RandomResizedCrop tries before its central fallback.
const cropAttempts = 10

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

// jitterNames is torchvision's index order of the four ColorJitter ops.
var jitterNames = [4]string{OpBrightness, OpContrast, OpSaturation, OpHue}

// sampleJitter draws ColorJitter's parameters as torchvision >= 0.8 does: a random
// permutation of the four ops, then the factors in the fixed order b, c, s, h. Disabled ops
// (identity range) draw nothing and stay out of the order. order must have room for 4.
func sampleJitter(r *viewRNG, st *step, j *pipeline.Jitter, order []string) {
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

// viewRecord is the storage one view's params point into, so that sampling allocates nothing.
type viewRecord struct {
	params pipeline.ViewParams
	jitter pipeline.Jitter
	order  [4]string
	sigma  float64
}

// clone copies the params out of the record, for keeping.
func (rec *viewRecord) clone() pipeline.ViewParams {
	p := rec.params
	if p.Jitter != nil {
		j := *p.Jitter
		j.Order = append([]string(nil), j.Order...)
		p.Jitter = &j
	}
	if p.BlurSigma != nil {
		s := *p.BlurSigma
		p.BlurSigma = &s
	}
	return p
}

// sampleView draws every random choice of view number v of group g, on a w x h image, into
// rec.params.
func (g *group) sampleView(r *viewRNG, v, w, h int, rec *viewRecord) {
	p := &rec.params
	*p = pipeline.ViewParams{Size: [2]int{g.height, g.width}}
	for i := range g.steps {
		st := &g.steps[i]
		prob := st.prob(v)
		switch st.op {
		case OpCrop:
			p.Crop = sampleCrop(r, w, h, st.scale, st.ratio)
		case OpJitter:
			// RandomApply: the op runs unless p < u.
			if r.Float64() <= prob {
				sampleJitter(r, st, &rec.jitter, rec.order[:])
				p.Jitter = &rec.jitter
			}
		case OpGrayscale:
			p.Grayscale = r.Float64() < prob
		case OpBlur:
			if r.Float64() <= prob { // RandomApply, as MoCo wraps its GaussianBlur
				rec.sigma = r.Uniform(st.sigma[0], st.sigma[1])
				p.BlurSigma = &rec.sigma
			}
		case OpFlip:
			p.Flip = r.Float64() < prob
		case OpSolarize:
			p.Solarize = r.Float64() < prob
		}
	}
}
