package augment

import (
	"fmt"
	"math"

	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// Op names: the steps of a recipe, and the keys of the per-op time counters.
const (
	OpCrop       = "random_resized_crop"
	OpJitter     = "color_jitter"
	OpGrayscale  = "grayscale"
	OpBlur       = "gaussian_blur"
	OpFlip       = "hflip"
	OpSolarize   = "solarize"
	OpBrightness = "brightness" // the four jitter ops, timed one by one
	OpContrast   = "contrast"
	OpSaturation = "saturation"
	OpHue        = "hue"
)

// mocoV2Order is the order MoCo v2 applies its ops in, and the order of the parity vectors.
var mocoV2Order = []string{OpCrop, OpJitter, OpGrayscale, OpBlur, OpFlip, OpSolarize}

// Replay renders the view that p describes from src, in MoCo v2's op order (crop+resize,
// jitter in p.Jitter.Order, grayscale, blur, flip, then solarize if set). It is what the
// parity vectors and `pipeline augment --params` check.
func Replay(src pipeline.Image, p pipeline.ViewParams) (pipeline.Image, error) {
	dst := ops.NewImage(p.Size[1], p.Size[0])
	if err := render(dst, src, &p, mocoV2Order, new(ops.Scratch), nil); err != nil {
		return pipeline.Image{}, err
	}
	return dst, nil
}

// render makes the view p describes from src into dst (already sized p.Size), running the
// ops in order; stats, when not nil, times each op.
func render(dst, src pipeline.Image, p *pipeline.ViewParams, order []string, s *ops.Scratch, stats *opStats) error {
	if dst.Height != p.Size[0] || dst.Width != p.Size[1] {
		return fmt.Errorf("view buffer is %dx%d, params say %dx%d (height x width)",
			dst.Height, dst.Width, p.Size[0], p.Size[1])
	}
	// The flip is done by the resize: every later op commutes with it exactly (colour ops
	// are per pixel or use the mean, and the blur's box passes are symmetric). It is counted
	// as part of the crop's time.
	flipped := false
	for _, op := range order {
		switch op {
		case OpCrop:
			t := stats.start()
			if err := ops.ResizedCropFlip(dst, src, p.Crop, p.Flip, s); err != nil {
				return err
			}
			flipped = p.Flip
			stats.stop(OpCrop, t)
		case OpJitter:
			if p.Jitter != nil {
				if err := jitter(dst, p.Jitter, s, stats); err != nil {
					return err
				}
			}
		case OpGrayscale:
			if p.Grayscale {
				t := stats.start()
				ops.Grayscale(dst)
				stats.stop(OpGrayscale, t)
			}
		case OpBlur:
			if p.BlurSigma != nil {
				if sigma := *p.BlurSigma; !(math.Abs(sigma) <= maxBlurSigma) {
					return fmt.Errorf("blur sigma %v: want at most %d", sigma, maxBlurSigma)
				}
				t := stats.start()
				ops.GaussianBlur(dst, *p.BlurSigma, s)
				stats.stop(OpBlur, t)
			}
		case OpFlip:
			if p.Flip && !flipped {
				t := stats.start()
				ops.FlipHorizontal(dst)
				stats.stop(OpFlip, t)
			}
		case OpSolarize:
			if p.Solarize {
				t := stats.start()
				ops.Solarize(dst, solarizeThreshold)
				stats.stop(OpSolarize, t)
			}
		default:
			return fmt.Errorf("unknown op %q", op)
		}
	}
	return nil
}

// solarizeThreshold is BYOL's 0.5 and DINO's PIL default 128 on 8-bit samples.
const solarizeThreshold = 128

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
