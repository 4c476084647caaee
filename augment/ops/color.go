package ops

import "pipeline/pipeline"

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

// blendTable is blendByte with a fixed degenerate value, for every x.
func blendTable(d int, f float32) *[256]uint8 {
	var t [256]uint8
	for x := range t {
		t[x] = blendByte(d, x, f)
	}
	return &t
}

func applyTable(pix []uint8, t *[256]uint8) {
	for i, v := range pix {
		pix[i] = t[v]
	}
}

// Brightness is torchvision's adjust_brightness on a PIL image: blend(black, im, f).
func Brightness(im pipeline.Image, f float64) {
	if float32(f) == 1 {
		return
	}
	applyTable(im.Pix, blendTable(0, float32(f)))
}

// MeanLuma is round(mean(L)) as ImageEnhance.Contrast computes it: int(mean + 0.5).
func MeanLuma(im pipeline.Image) int {
	var sum uint64
	pix := im.Pix[:im.Width*im.Height*3]
	for i := 0; i+2 < len(pix); i += 3 {
		sum += uint64(Luma(pix[i], pix[i+1], pix[i+2]))
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
	applyTable(im.Pix, blendTable(MeanLuma(im), float32(f)))
}

// Saturation is torchvision's adjust_saturation on a PIL image: blend(L, im, f) with the
// per-pixel grey level L.
func Saturation(im pipeline.Image, f float64) {
	ff := float32(f)
	if ff == 1 {
		return
	}
	// prod[x-d+255] is the float32 product f*(x-d); the sum with d stays per pixel.
	var prod [511]float32
	for i := range prod {
		prod[i] = float32(ff * float32(i-255))
	}
	pix := im.Pix[:im.Width*im.Height*3]
	for i := 0; i+2 < len(pix); i += 3 {
		p := pix[i : i+3 : i+3]
		l := int(Luma(p[0], p[1], p[2]))
		fl := float32(l)
		p[0] = clampTrunc(fl + prod[int(p[0])-l+255])
		p[1] = clampTrunc(fl + prod[int(p[1])-l+255])
		p[2] = clampTrunc(fl + prod[int(p[2])-l+255])
	}
}

func clampTrunc(t float32) uint8 {
	if t <= 0 {
		return 0
	}
	if t >= 255 {
		return 255
	}
	return uint8(t)
}

// Grayscale replaces every pixel by its L in all three channels (RandomGrayscale with 3
// output channels on a PIL image).
func Grayscale(im pipeline.Image) {
	pix := im.Pix[:im.Width*im.Height*3]
	for i := 0; i+2 < len(pix); i += 3 {
		p := pix[i : i+3 : i+3]
		l := Luma(p[0], p[1], p[2])
		p[0], p[1], p[2] = l, l, l
	}
}

// Solarize inverts every sample at or above threshold (PIL ImageOps.solarize; BYOL and DINO
// use 128).
func Solarize(im pipeline.Image, threshold uint8) {
	var t [256]uint8
	for x := range t {
		if x < int(threshold) {
			t[x] = uint8(x)
		} else {
			t[x] = uint8(255 - x)
		}
	}
	applyTable(im.Pix[:im.Width*im.Height*3], &t)
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
