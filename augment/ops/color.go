package ops

import (
	"encoding/binary"

	"pipeline/pipeline"
)

// Luma is Pillow's RGB to L conversion: ITU-R 601 weights in 16-bit fixed point, rounded.
func Luma(r, g, b uint8) uint8 {
	return uint8((19595*uint32(r) + 38470*uint32(g) + 7471*uint32(b) + 0x8000) >> 16)
}

// blendByte is Pillow's Image.blend on one sample: degenerate d, current x, factor f (a C
// float). The float32 product is written as its own conversion so that no compiler fuses it
// into an FMA; the result is truncated, and clamped (which only matters when f is outside
// [0, 1]).
func blendByte(d, x int, f float32) uint8 {
	t := float32(d) + float32(f*float32(x-d))
	if t <= 0 {
		return 0
	}
	if t >= 255 {
		return 255
	}
	return uint8(t)
}

// blendBytes is Image.blend over pix in place, against the degenerate image deg (same
// length), or against the constant d when deg is nil.
func blendBytes(pix, deg []uint8, d uint8, f float32) {
	done := 0
	// The SIMD kernels saturate through signed 16-bit packs and a float32-to-int32
	// conversion: results of 32768 or more (or past 2^31) would come out as 0. With
	// |f| <= 127 every result lies below 255*128, so only such factors may take them.
	if useSIMD && f >= -127 && f <= 127 {
		done = blendSIMD(pix, deg, d, f)
	}
	if deg == nil {
		for i := done; i < len(pix); i++ {
			pix[i] = blendByte(int(d), int(pix[i]), f)
		}
		return
	}
	deg = deg[:len(pix)]
	for i := done; i < len(pix); i++ {
		pix[i] = blendByte(int(deg[i]), int(pix[i]), f)
	}
}

// Brightness is torchvision's adjust_brightness on a PIL image: blend(black, im, f).
func Brightness(im pipeline.Image, f float64) {
	if float32(f) == 1 {
		return
	}
	blendBytes(im.Pix[:im.Width*im.Height*3], nil, 0, float32(f))
}

// MeanLuma is round(mean(L)) as ImageEnhance.Contrast computes it: int(mean + 0.5).
func MeanLuma(im pipeline.Image) int {
	var sum uint64
	pix := im.Pix[:im.Width*im.Height*3]
	for useSIMD && len(pix) >= 16 {
		s, done := lumaSumSIMD(pix)
		sum += s
		pix = pix[done:]
	}
	for i := 0; i+2 < len(pix); i += 3 {
		p := pix[i : i+3 : i+3]
		sum += uint64(Luma(p[0], p[1], p[2]))
	}
	n := im.Width * im.Height
	if n == 0 {
		return 0
	}
	return int(float64(sum)/float64(n) + 0.5)
}

// Contrast is torchvision's adjust_contrast on a PIL image: blend(grey(mean L), im, f).
func Contrast(im pipeline.Image, f float64) {
	if float32(f) == 1 {
		return
	}
	blendBytes(im.Pix[:im.Width*im.Height*3], nil, uint8(MeanLuma(im)), float32(f))
}

// Saturation is torchvision's adjust_saturation on a PIL image: blend(L, im, f) with the
// per-pixel grey level L.
func Saturation(im pipeline.Image, f float64, s *Scratch) {
	if float32(f) == 1 {
		return
	}
	if s == nil {
		s = new(Scratch)
	}
	pix := im.Pix[:im.Width*im.Height*3]
	grey := grow(&s.img, len(pix))
	greyPixels(grey, pix)
	blendBytes(pix, grey, 0, float32(f))
}

// greyPixels writes the L of every pixel of src to all three channels of dst (which may be
// src).
func greyPixels(dst, src []uint8) {
	done := 0
	if useSIMD {
		for done+16 <= len(src) {
			done += lumaGreySIMD(dst[done:], src[done:])
		}
	}
	for i := done; i+2 < len(src); i += 3 {
		p := src[i : i+3 : i+3]
		l := Luma(p[0], p[1], p[2])
		g := dst[i : i+3 : i+3]
		g[0], g[1], g[2] = l, l, l
	}
}

// Grayscale replaces every pixel by its L in all three channels (RandomGrayscale with 3
// output channels on a PIL image).
func Grayscale(im pipeline.Image) {
	pix := im.Pix[:im.Width*im.Height*3]
	greyPixels(pix, pix)
}

// Solarize inverts every sample at or above threshold (PIL ImageOps.solarize; BYOL and DINO
// use 128).
func Solarize(im pipeline.Image, threshold uint8) {
	pix := im.Pix[:im.Width*im.Height*3]
	if threshold == 128 {
		// At 128 a sample is inverted exactly when its top bit is set: 8 samples a step, each
		// XORed with 0xFF where its top bit is 1 (0x01 per byte times 0xFF never carries).
		n := len(pix) &^ 7
		for i := 0; i < n; i += 8 {
			w := binary.LittleEndian.Uint64(pix[i:])
			w ^= (w >> 7 & 0x0101010101010101) * 0xFF
			binary.LittleEndian.PutUint64(pix[i:], w)
		}
		for i := n; i < len(pix); i++ {
			if pix[i] >= 128 {
				pix[i] = 255 - pix[i]
			}
		}
		return
	}
	var t [256]uint8
	for x := range t {
		if x < int(threshold) {
			t[x] = uint8(x)
		} else {
			t[x] = uint8(255 - x)
		}
	}
	for i, v := range pix {
		pix[i] = t[v]
	}
}

// FlipHorizontal reverses the column order (PIL FLIP_LEFT_RIGHT).
func FlipHorizontal(im pipeline.Image) {
	w3 := im.Width * 3
	for y := 0; y < im.Height; y++ {
		row := im.Pix[y*w3 : (y+1)*w3]
		for i, j := 0, w3-3; i < j; i, j = i+3, j-3 {
			a := row[i : i+3 : i+3]
			b := row[j : j+3 : j+3]
			a[0], b[0] = b[0], a[0]
			a[1], b[1] = b[1], a[1]
			a[2], b[2] = b[2], a[2]
		}
	}
}
