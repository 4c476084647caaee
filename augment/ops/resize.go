package ops

import (
	"fmt"
	"math"

	"pipeline/pipeline"
)

// Pillow's fixed-point precision for 8-bit resampling: 32 - 8 - 2 bits.
const resizeBits = 22

// coeffs are the bilinear weights of one resampling axis, in Pillow's fixed point: output
// sample x reads n[x] inputs from start[x], with weights k[x*ksize : x*ksize+n[x]].
type coeffs struct {
	ksize int
	start []int32
	n     []int32
	k     []int32
	pre   []float64 // normalised float weights of one output sample
}

// compute fills c for an axis of inSize samples resampled to outSize, following Pillow's
// precompute_coeffs and normalize_coeffs_8bpc for the triangle filter (support 1).
func (c *coeffs) compute(inSize, outSize int) {
	scale := float64(inSize) / float64(outSize)
	filterscale := max(scale, 1.0)
	support := 1.0 * filterscale
	c.ksize = int(math.Ceil(support))*2 + 1
	c.start = grow(&c.start, outSize)
	c.n = grow(&c.n, outSize)
	c.k = grow(&c.k, outSize*c.ksize)
	pre := grow(&c.pre, c.ksize)
	ss := 1.0 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := (float64(xx) + 0.5) * scale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w := triangle((float64(x+xmin) - center + 0.5) * ss)
			pre[x] = w
			ww += w
		}
		k := c.k[xx*c.ksize : (xx+1)*c.ksize]
		for x := range k {
			if x >= xmax {
				k[x] = 0
				continue
			}
			w := pre[x]
			if ww != 0 {
				w /= ww
			}
			if w < 0 {
				k[x] = int32(-0.5 + w*(1<<resizeBits))
			} else {
				k[x] = int32(0.5 + w*(1<<resizeBits))
			}
		}
		c.start[xx] = int32(xmin)
		c.n[xx] = int32(xmax)
	}
}

func triangle(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// clip8 turns a fixed-point sum (rounding offset included) into a byte, as Pillow's clip8.
func clip8(v int32) uint8 {
	v >>= resizeBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// ResizedCrop writes the box crop of src, resized to dst's size with Pillow's antialiased
// bilinear filter, into dst: what torchvision's resized_crop does to a PIL image. The crop is
// read in place (never copied). As in Pillow, the horizontal pass runs first into an 8-bit
// intermediate, only over the rows the vertical pass needs, and an axis whose size does not
// change is skipped.
func ResizedCrop(dst, src pipeline.Image, crop pipeline.Crop, s *Scratch) error {
	if crop.Width <= 0 || crop.Height <= 0 || crop.Left < 0 || crop.Top < 0 ||
		crop.Left+crop.Width > src.Width || crop.Top+crop.Height > src.Height {
		return fmt.Errorf("crop %+v outside the %dx%d image", crop, src.Width, src.Height)
	}
	if dst.Width <= 0 || dst.Height <= 0 || len(dst.Pix) < dst.Width*dst.Height*3 {
		return fmt.Errorf("bad output image %dx%d with %d bytes", dst.Width, dst.Height, len(dst.Pix))
	}
	if s == nil {
		s = new(Scratch)
	}
	needH := crop.Width != dst.Width
	needV := crop.Height != dst.Height
	sstride := src.Stride()
	base := crop.Top*sstride + crop.Left*3

	if !needH && !needV {
		w3 := dst.Width * 3
		for y := 0; y < dst.Height; y++ {
			off := base + y*sstride
			copy(dst.Pix[y*w3:(y+1)*w3], src.Pix[off:off+w3])
		}
		return nil
	}
	if !needH {
		s.vcoef.compute(crop.Height, dst.Height)
		resampleVertical(dst.Pix, dst.Width*3, src.Pix[base:], sstride, &s.vcoef, 0, dst.Height, s)
		return nil
	}
	s.hcoef.compute(crop.Width, dst.Width)
	if !needV {
		resampleHorizontal(dst.Pix, dst.Width, src.Pix[base:], sstride, crop.Height, &s.hcoef)
		return nil
	}
	s.vcoef.compute(crop.Height, dst.Height)
	// Only rows first..last-1 of the crop feed the vertical pass.
	first := int(s.vcoef.start[0])
	last := int(s.vcoef.start[dst.Height-1] + s.vcoef.n[dst.Height-1])
	rows := last - first
	tmp := grow(&s.img, rows*dst.Width*3)
	resampleHorizontal(tmp, dst.Width, src.Pix[base+first*sstride:], sstride, rows, &s.hcoef)
	resampleVertical(dst.Pix, dst.Width*3, tmp, dst.Width*3, &s.vcoef, first, dst.Height, s)
	return nil
}

// Resize resizes all of src to dst's size (Pillow bilinear).
func Resize(dst, src pipeline.Image, s *Scratch) error {
	return ResizedCrop(dst, src, pipeline.Crop{Width: src.Width, Height: src.Height}, s)
}

// resampleHorizontal resamples rows rows of src (stride sstride) to outW pixels each, into
// dst (packed).
func resampleHorizontal(dst []uint8, outW int, src []uint8, sstride, rows int, c *coeffs) {
	const half = 1 << (resizeBits - 1)
	ks := c.ksize
	for y := 0; y < rows; y++ {
		srow := src[y*sstride:]
		drow := dst[y*outW*3 : (y+1)*outW*3]
		for x := 0; x < outW; x++ {
			n := int(c.n[x])
			k := c.k[x*ks : x*ks+n]
			p := srow[int(c.start[x])*3 : (int(c.start[x])+n)*3]
			r, g, b := int32(half), int32(half), int32(half)
			for t, kt := range k {
				q := p[t*3 : t*3+3 : t*3+3]
				r += int32(q[0]) * kt
				g += int32(q[1]) * kt
				b += int32(q[2]) * kt
			}
			d := drow[x*3 : x*3+3 : x*3+3]
			d[0], d[1], d[2] = clip8(r), clip8(g), clip8(b)
		}
	}
}

// resampleVertical makes outH rows of w3 bytes in dst from the rows of src (stride sstride);
// the weights' row indices are shifted down by shift (the rows the horizontal pass skipped).
func resampleVertical(dst []uint8, w3 int, src []uint8, sstride int, c *coeffs, shift, outH int, s *Scratch) {
	const half = 1 << (resizeBits - 1)
	acc := grow(&s.acc, w3)
	ks := c.ksize
	for y := 0; y < outH; y++ {
		n := int(c.n[y])
		k := c.k[y*ks : y*ks+n]
		start := int(c.start[y]) - shift
		for i := range acc {
			acc[i] = half
		}
		for t, kt := range k {
			row := src[(start+t)*sstride : (start+t)*sstride+w3]
			acc := acc[:len(row)]
			for i, v := range row {
				acc[i] += int32(v) * kt
			}
		}
		drow := dst[y*w3 : (y+1)*w3]
		acc := acc[:len(drow)]
		for i, v := range acc {
			drow[i] = clip8(v)
		}
	}
}
