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
//
// For speed every output sample is also given the same number of taps, taps: it reads
// inputs from = pos[x] .. pos[x]+taps-1 with weights w[x*taps : (x+1)*taps], the window being
// shifted inside the input and padded with zero weights. Zero weights add nothing to the
// integer sums, so the results are Pillow's.
type coeffs struct {
	ksize int
	start []int32
	n     []int32
	k     []int32
	pre   []float64 // normalised float weights of one output sample

	taps int
	pos  []int32
	w    []int32
	wb   [][4]int32 // w with each weight repeated on 4 lanes, for the SIMD kernel
	wb2  [][8]int32 // per pair of outputs and tap, both outputs' weights on 4 lanes each
	wu   []uint32   // w as uint32 (bilinear weights are never negative), for firRows
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
	c.align(inSize, outSize)
}

// align fills taps, pos and w from start, n and k.
func (c *coeffs) align(inSize, outSize int) {
	c.taps = 1
	for _, n := range c.n[:outSize] {
		c.taps = max(c.taps, int(n))
	}
	c.taps = min(c.taps, inSize)
	c.pos = grow(&c.pos, outSize)
	c.w = grow(&c.w, outSize*c.taps)
	for x := 0; x < outSize; x++ {
		start, n := int(c.start[x]), int(c.n[x])
		pos := min(start, inSize-c.taps)
		w := c.w[x*c.taps : (x+1)*c.taps]
		clear(w)
		copy(w[start-pos:], c.k[x*c.ksize:x*c.ksize+n])
		c.pos[x] = int32(pos)
	}
	c.wb = grow(&c.wb, len(c.w))
	c.wu = grow(&c.wu, len(c.w))
	for i, v := range c.w {
		c.wb[i] = [4]int32{v, v, v, v}
		c.wu[i] = uint32(v)
	}
	c.pairLanes()
}

// pairLanes lays w out in wb2 for the kernel that computes two outputs at once.
func (c *coeffs) pairLanes() {
	n := len(c.pos)
	c.wb2 = grow(&c.wb2, (n+1)/2*c.taps)
	for x := range n {
		for t := range c.taps {
			v := c.w[x*c.taps+t]
			lanes := c.wb2[x/2*c.taps+t][x%2*4:][:4]
			lanes[0], lanes[1], lanes[2], lanes[3] = v, v, v, v
		}
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

// reverse swaps the order of the output samples of the aligned taps.
func (c *coeffs) reverse() {
	n, taps := len(c.pos), c.taps
	for a, b := 0, n-1; a < b; a, b = a+1, b-1 {
		c.pos[a], c.pos[b] = c.pos[b], c.pos[a]
		for t := range taps {
			i, j := a*taps+t, b*taps+t
			c.w[i], c.w[j] = c.w[j], c.w[i]
			c.wb[i], c.wb[j] = c.wb[j], c.wb[i]
			c.wu[i], c.wu[j] = c.wu[j], c.wu[i]
		}
	}
	c.pairLanes()
}

// maxPos is the start of the rightmost window (the first or the last, as pos is monotonic).
func (c *coeffs) maxPos() int { return int(max(c.pos[0], c.pos[len(c.pos)-1])) }

// clip8 turns a fixed-point sum (rounding offset included) into a byte, as Pillow's clip8.
func clip8(v int32) uint8 {
	return uint8(min(max(v>>resizeBits, 0), 255))
}

// ResizedCrop writes the box crop of src, resized to dst's size with Pillow's antialiased
// bilinear filter, into dst: what torchvision's resized_crop does to a PIL image. The crop is
// read in place (never copied). As in Pillow, the horizontal pass runs first into an 8-bit
// intermediate, only over the rows the vertical pass needs, and an axis whose size does not
// change is skipped.
func ResizedCrop(dst, src pipeline.Image, crop pipeline.Crop, s *Scratch) error {
	return ResizedCropFlip(dst, src, crop, false, s)
}

// ResizedCropFlip is ResizedCrop followed, when flip is set, by FlipHorizontal. The flip
// costs nothing when the width changes: the horizontal pass writes its pixels in reverse
// order, which gives the same bytes because the vertical pass works column by column.
func ResizedCropFlip(dst, src pipeline.Image, crop pipeline.Crop, flip bool, s *Scratch) error {
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
		if flip {
			FlipHorizontal(dst)
		}
		return nil
	}
	if !needH {
		s.vcoef.compute(crop.Height, dst.Height)
		resampleVertical(dst.Pix, dst.Width*3, src.Pix[base:], sstride, &s.vcoef, 0, dst.Height, s)
		if flip {
			FlipHorizontal(dst)
		}
		return nil
	}
	s.hcoef.compute(crop.Width, dst.Width)
	if flip {
		s.hcoef.reverse()
	}
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
	outW3 := outW * 3
	// The SIMD kernel reads one byte past the last window of a row.
	need := (c.maxPos()+c.taps)*3 + 1
	for y := 0; y < rows; y++ {
		srow := src[y*sstride:]
		drow := dst[y*outW3 : (y+1)*outW3]
		if useSIMD && c.taps <= maxSIMDTaps && len(srow) >= need && outW > 1 {
			resampleHSIMD(drow, srow, outW-1, c)
			horizontalLast(drow, srow, c)
			continue
		}
		switch c.taps {
		case 2:
			horizontal2(drow, srow, c)
		case 3:
			horizontal3(drow, srow, c)
		case 4:
			horizontal4(drow, srow, c)
		default:
			horizontalN(drow, srow, c)
		}
	}
}

const half = 1 << (resizeBits - 1)

// horizontalLast computes the last pixel of a row (the one the SIMD kernel leaves).
func horizontalLast(drow, srow []uint8, c *coeffs) {
	x := len(c.pos) - 1
	taps := c.taps
	p := srow[int(c.pos[x])*3 : (int(c.pos[x])+taps)*3]
	r, g, b := int32(half), int32(half), int32(half)
	for t, kt := range c.w[x*taps : (x+1)*taps] {
		r += int32(p[t*3]) * kt
		g += int32(p[t*3+1]) * kt
		b += int32(p[t*3+2]) * kt
	}
	drow[x*3], drow[x*3+1], drow[x*3+2] = clip8(r), clip8(g), clip8(b)
}

func horizontal2(drow, srow []uint8, c *coeffs) {
	w := c.w[:len(c.pos)*2]
	for x, pos := range c.pos {
		p := srow[int(pos)*3 : int(pos)*3+6 : int(pos)*3+6]
		k := w[x*2 : x*2+2 : x*2+2]
		k0, k1 := k[0], k[1]
		d := drow[x*3 : x*3+3 : x*3+3]
		d[0] = clip8(half + int32(p[0])*k0 + int32(p[3])*k1)
		d[1] = clip8(half + int32(p[1])*k0 + int32(p[4])*k1)
		d[2] = clip8(half + int32(p[2])*k0 + int32(p[5])*k1)
	}
}

func horizontal3(drow, srow []uint8, c *coeffs) {
	w := c.w[:len(c.pos)*3]
	for x, pos := range c.pos {
		p := srow[int(pos)*3 : int(pos)*3+9 : int(pos)*3+9]
		k := w[x*3 : x*3+3 : x*3+3]
		k0, k1, k2 := k[0], k[1], k[2]
		d := drow[x*3 : x*3+3 : x*3+3]
		d[0] = clip8(half + int32(p[0])*k0 + int32(p[3])*k1 + int32(p[6])*k2)
		d[1] = clip8(half + int32(p[1])*k0 + int32(p[4])*k1 + int32(p[7])*k2)
		d[2] = clip8(half + int32(p[2])*k0 + int32(p[5])*k1 + int32(p[8])*k2)
	}
}

func horizontal4(drow, srow []uint8, c *coeffs) {
	w := c.w[:len(c.pos)*4]
	for x, pos := range c.pos {
		p := srow[int(pos)*3 : int(pos)*3+12 : int(pos)*3+12]
		k := w[x*4 : x*4+4 : x*4+4]
		k0, k1, k2, k3 := k[0], k[1], k[2], k[3]
		d := drow[x*3 : x*3+3 : x*3+3]
		d[0] = clip8(half + int32(p[0])*k0 + int32(p[3])*k1 + int32(p[6])*k2 + int32(p[9])*k3)
		d[1] = clip8(half + int32(p[1])*k0 + int32(p[4])*k1 + int32(p[7])*k2 + int32(p[10])*k3)
		d[2] = clip8(half + int32(p[2])*k0 + int32(p[5])*k1 + int32(p[8])*k2 + int32(p[11])*k3)
	}
}

func horizontalN(drow, srow []uint8, c *coeffs) {
	taps := c.taps
	for x, pos := range c.pos {
		p := srow[int(pos)*3 : int(pos)*3+taps*3]
		k := c.w[x*taps : x*taps+taps]
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

// resampleVertical makes outH rows of w3 bytes in dst from the rows of src (stride sstride);
// the weights' row indices are shifted down by shift (the rows the horizontal pass skipped).
func resampleVertical(dst []uint8, w3 int, src []uint8, sstride int, c *coeffs, shift, outH int, s *Scratch) {
	taps := c.taps
	if taps > maxSIMDTaps || !useSIMD {
		resampleVerticalGo(dst, w3, src, sstride, c, shift, outH, s)
		return
	}
	f := &s.fir
	f.bias, f.shift = half, resizeBits
	for y := 0; y < outH; y++ {
		first := int(c.pos[y]) - shift
		for t := range taps {
			f.rows[t] = src[(first+t)*sstride : (first+t)*sstride+w3]
		}
		f.setWeights(c.wu[y*taps : (y+1)*taps])
		f.run(dst[y*w3 : (y+1)*w3])
	}
}

// resampleVerticalGo is resampleVertical for filters too long for the SIMD kernels.
func resampleVerticalGo(dst []uint8, w3 int, src []uint8, sstride int, c *coeffs, shift, outH int, s *Scratch) {
	taps := c.taps
	row := func(i int) []uint8 { return src[i*sstride : i*sstride+w3] }
	for y := 0; y < outH; y++ {
		k := c.w[y*taps : (y+1)*taps]
		first := int(c.pos[y]) - shift
		out := dst[y*w3 : (y+1)*w3]
		switch taps {
		case 2:
			vertical2(out, row(first), row(first+1), k[0], k[1])
		case 3:
			vertical3(out, row(first), row(first+1), row(first+2), k[0], k[1], k[2])
		case 4:
			vertical4(out, row(first), row(first+1), row(first+2), row(first+3), k[0], k[1], k[2], k[3])
		default:
			acc := grow(&s.acc, w3)
			for i := range acc {
				acc[i] = half
			}
			for t, kt := range k {
				r := row(first + t)
				for i, v := range r {
					acc[i] += int32(v) * kt
				}
			}
			for i, v := range acc {
				out[i] = clip8(v)
			}
		}
	}
}

func vertical2(out, r0, r1 []uint8, k0, k1 int32) {
	r0, r1 = r0[:len(out)], r1[:len(out)]
	for i := range out {
		out[i] = clip8(half + int32(r0[i])*k0 + int32(r1[i])*k1)
	}
}

func vertical3(out, r0, r1, r2 []uint8, k0, k1, k2 int32) {
	r0, r1, r2 = r0[:len(out)], r1[:len(out)], r2[:len(out)]
	for i := range out {
		out[i] = clip8(half + int32(r0[i])*k0 + int32(r1[i])*k1 + int32(r2[i])*k2)
	}
}

func vertical4(out, r0, r1, r2, r3 []uint8, k0, k1, k2, k3 int32) {
	r0, r1, r2, r3 = r0[:len(out)], r1[:len(out)], r2[:len(out)], r3[:len(out)]
	for i := range out {
		out[i] = clip8(half + int32(r0[i])*k0 + int32(r1[i])*k1 + int32(r2[i])*k2 + int32(r3[i])*k3)
	}
}
