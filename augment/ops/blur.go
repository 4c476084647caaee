package ops

import (
	"math"

	"pipeline/pipeline"
)

// blurPasses is the number of box passes per axis Pillow's GaussianBlur makes.
const blurPasses = 3

// BoxRadius is Pillow's _gaussian_blur_radius: the fractional radius of the box whose
// blurPasses-fold repetition has the variance of a Gaussian of standard deviation sigma
// (Gwosdek et al. 2011), in Pillow's float32 arithmetic.
func BoxRadius(sigma float32) float32 {
	sigma2 := sigma * sigma / blurPasses
	l := float32(math.Sqrt(12.0*float64(sigma2) + 1.0))
	lf := float32(math.Floor((float64(l) - 1.0) / 2.0))
	a := (2*lf + 1) * (lf*(lf+1) - 3*sigma2)
	a /= 6 * (sigma2 - (lf+1)*(lf+1))
	return lf + a
}

// boxWeights are the fixed-point weights (24 fractional bits) of one extended box pass:
// 2*ri+1 full taps of ww and one fractional tap of fw at each end.
type boxWeights struct {
	ri     int
	ww, fw uint32
}

func newBoxWeights(r float32) boxWeights {
	ri := int(r)
	ww := uint32(float32(1<<24) / (r*2 + 1))
	fw := ((1 << 24) - uint32(ri*2+1)*ww) / 2
	return boxWeights{ri: ri, ww: ww, fw: fw}
}

// GaussianBlur is PIL's ImageFilter.GaussianBlur(radius=sigma), in place: three extended box
// passes along rows, then three along columns, each rounded to 8 bits, with edge samples
// replicated.
func GaussianBlur(im pipeline.Image, sigma float64, s *Scratch) {
	r := BoxRadius(float32(sigma))
	if r <= 0 || im.Width == 0 || im.Height == 0 {
		return
	}
	if s == nil {
		s = new(Scratch)
	}
	bw := newBoxWeights(r)
	if 2*bw.ri+3 > maxSIMDTaps {
		gaussianBlurGo(im, bw, s)
		return
	}
	// One pass is a filter of 2*ri+3 taps: fw, ww (2*ri+1 times), fw.
	taps := 2*bw.ri + 3
	var k [maxSIMDTaps]uint32
	k[0], k[taps-1] = bw.fw, bw.fw
	for t := 1; t < taps-1; t++ {
		k[t] = bw.ww
	}
	f := &s.fir
	f.setWeights(k[:taps])
	f.bias, f.shift = 1<<23, 24

	w3 := im.Width * 3
	pad := (bw.ri + 1) * 3
	line := grow(&s.line, w3+2*pad)
	for y := 0; y < im.Height; y++ {
		row := im.Pix[y*w3 : (y+1)*w3]
		for range blurPasses {
			padRow(line, row, pad)
			for t := range taps {
				f.rows[t] = line[t*3 : t*3+w3]
			}
			f.run(row)
		}
	}
	tmp := grow(&s.img, w3*im.Height)
	src, dst := im.Pix[:w3*im.Height], tmp
	h := im.Height
	for range blurPasses {
		for y := 0; y < h; y++ {
			for t := range taps {
				yy := min(max(y+t-bw.ri-1, 0), h-1)
				f.rows[t] = src[yy*w3 : (yy+1)*w3]
			}
			f.run(dst[y*w3 : (y+1)*w3])
		}
		src, dst = dst, src
	}
	copy(im.Pix, src) // an odd number of passes leaves the result in tmp
}

// padRow copies row into line with pad bytes of replicated edge pixels on each side.
func padRow(line, row []uint8, pad int) {
	w3 := len(row)
	copy(line[pad:], row)
	for i := 0; i < pad; i += 3 {
		copy(line[i:i+3], row[:3])
		copy(line[pad+w3+i:pad+w3+i+3], row[w3-3:])
	}
}

// gaussianBlurGo is GaussianBlur with running sums, for radii too wide for firRows.
func gaussianBlurGo(im pipeline.Image, bw boxWeights, s *Scratch) {
	w3 := im.Width * 3
	pad := (bw.ri + 1) * 3
	line := grow(&s.line, w3+2*pad)
	for y := 0; y < im.Height; y++ {
		row := im.Pix[y*w3 : (y+1)*w3]
		for range blurPasses {
			boxRow(row, line, pad, bw)
		}
	}
	tmp := grow(&s.img, w3*im.Height)
	acc := grow(&s.acc, w3)
	src, dst := im.Pix[:w3*im.Height], tmp
	for range blurPasses {
		boxColumns(dst, src, w3, im.Height, bw, acc)
		src, dst = dst, src
	}
	copy(im.Pix, src)
}

// boxRow runs one box pass over a packed RGB row in place, through a copy padded with pad
// bytes of replicated edge pixels on each side.
func boxRow(row, line []uint8, pad int, bw boxWeights) {
	w3 := len(row)
	padRow(line, row, pad)
	ww, fw := bw.ww, bw.fw
	const half = 1 << 23
	if bw.ri == 0 {
		// The common case (sigma < ~1.5): a three-tap filter.
		for i := range row {
			c := pad + i
			row[i] = uint8((ww*uint32(line[c]) + fw*(uint32(line[c-3])+uint32(line[c+3])) + half) >> 24)
		}
		return
	}
	span := bw.ri * 3
	for ch := range 3 {
		// acc is the sum of the 2*ri+1 full taps around x.
		var acc uint32
		for k := -span; k <= span; k += 3 {
			acc += uint32(line[pad+ch+k])
		}
		for i := ch; i < w3; i += 3 {
			c := pad + i
			row[i] = uint8((ww*acc + fw*(uint32(line[c-span-3])+uint32(line[c+span+3])) + half) >> 24)
			acc += uint32(line[c+span+3]) - uint32(line[c-span])
		}
	}
}

// boxColumns runs one box pass down the columns of src into dst (both h rows of w3 bytes).
func boxColumns(dst, src []uint8, w3, h int, bw boxWeights, acc []int32) {
	ww, fw := bw.ww, bw.fw
	const half = 1 << 23
	rowAt := func(y int) []uint8 {
		y = min(max(y, 0), h-1)
		return src[y*w3 : (y+1)*w3]
	}
	if bw.ri == 0 {
		for y := 0; y < h; y++ {
			up, mid, down := rowAt(y-1), rowAt(y), rowAt(y+1)
			out := dst[y*w3 : (y+1)*w3]
			up, down = up[:len(out)], down[:len(out)]
			for i, m := range mid[:len(out)] {
				out[i] = uint8((ww*uint32(m) + fw*(uint32(up[i])+uint32(down[i])) + half) >> 24)
			}
		}
		return
	}
	ri := bw.ri
	for i := range acc {
		acc[i] = 0
	}
	for k := -ri; k <= ri; k++ {
		row := rowAt(k)
		for i, v := range row {
			acc[i] += int32(v)
		}
	}
	for y := 0; y < h; y++ {
		far0, far1 := rowAt(y-ri-1), rowAt(y+ri+1)
		out := dst[y*w3 : (y+1)*w3]
		for i := range out {
			out[i] = uint8((ww*uint32(acc[i]) + fw*(uint32(far0[i])+uint32(far1[i])) + half) >> 24)
		}
		leave := rowAt(y - ri)
		for i := range acc {
			acc[i] += int32(far1[i]) - int32(leave[i])
		}
	}
}
