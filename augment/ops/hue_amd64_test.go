package ops

import (
	"os"
	"testing"
)

// cubeSlab is every colour (a, b, c) with a in [a0, a0+n), as pixels, with 4 spare bytes
// that the kernels may read.
func cubeSlab(a0, n int) []uint8 {
	pix := make([]uint8, 0, n*65536*3+4)
	for a := a0; a < a0+n; a++ {
		for b := range 256 {
			for c := range 256 {
				pix = append(pix, uint8(a), uint8(b), uint8(c))
			}
		}
	}
	return pix
}

// hueCubeStep is the stride over the cube's first byte: every value with
// PIPELINE_EXHAUSTIVE=1 (2^24 colours), a sample otherwise.
func hueCubeStep(t *testing.T) int {
	if !useAVX2 {
		t.Skip("no AVX2 on this CPU")
	}
	if os.Getenv("PIPELINE_EXHAUSTIVE") != "" {
		return 1
	}
	if testing.Short() {
		return 51
	}
	return 17
}

// TestRGBToHSVAVX2MatchesGo checks the AVX2 rgb2hsv against RGBToHSV (which follows the
// reference step by step) on the whole RGB cube with PIPELINE_EXHAUSTIVE=1.
func TestRGBToHSVAVX2MatchesGo(t *testing.T) {
	step := hueCubeStep(t)
	for r := 0; r < 256; r += step {
		pix := cubeSlab(r, 1)
		n := hueGroups(pix)
		rgbToHSVAVX2(&pix[0], n)
		src := cubeSlab(r, 1)
		bad := 0
		for i := 0; i < n*24; i += 3 {
			h, s, v := RGBToHSV(src[i], src[i+1], src[i+2])
			if pix[i] != h || pix[i+1] != s || pix[i+2] != v {
				if bad++; bad < 5 {
					t.Errorf("rgb2hsv%v = %v, want %d,%d,%d", src[i:i+3], pix[i:i+3], h, s, v)
				}
			}
		}
		if bad > 0 {
			t.Fatalf("R = %d: %d colours differ", r, bad)
		}
	}
}

// TestHSVToRGBAVX2MatchesGo checks the AVX2 hsv2rgb against HSVToRGB over every (H, S, V)
// with PIPELINE_EXHAUSTIVE=1; the shift only renames H, so two shifts check the addition.
func TestHSVToRGBAVX2MatchesGo(t *testing.T) {
	step := hueCubeStep(t)
	for _, shift := range []uint8{0, 231} {
		for h := 0; h < 256; h += step {
			pix := cubeSlab(h, 1)
			n := hueGroups(pix)
			hsvToRGBAVX2(&pix[0], n, uint32(shift))
			src := cubeSlab(h, 1)
			bad := 0
			for i := 0; i < n*24; i += 3 {
				r, g, b := HSVToRGB(src[i]+shift, src[i+1], src[i+2])
				if pix[i] != r || pix[i+1] != g || pix[i+2] != b {
					if bad++; bad < 5 {
						t.Errorf("hsv2rgb%v (shift %d) = %v, want %d,%d,%d", src[i:i+3], shift, pix[i:i+3], r, g, b)
					}
				}
			}
			if bad > 0 {
				t.Fatalf("H = %d, shift %d: %d colours differ", h, shift, bad)
			}
		}
	}
}

// TestHueSIMDMatchesGo checks the split between the AVX2 groups and the Go tail, and that
// the kernel touches no byte outside the image.
func TestHueSIMDMatchesGo(t *testing.T) {
	for _, wh := range [][2]int{{224, 224}, {1, 1}, {9, 1}, {10, 1}, {3, 7}, {33, 5}} {
		src := noise(wh[0], wh[1], uint64(wh[0]*100+wh[1]))
		fast := clone(src)
		fast.Pix = append(fast.Pix, 1, 2, 3, 4, 5)[:len(src.Pix)]
		Hue(fast, -0.1)
		slow := clone(src)
		withoutSIMD(t, func() { Hue(slow, -0.1) })
		if string(fast.Pix) != string(slow.Pix) {
			t.Errorf("%dx%d: SIMD and Go hue differ", wh[0], wh[1])
		}
		if tail := fast.Pix[len(src.Pix):cap(fast.Pix)][:5]; string(tail) != "\x01\x02\x03\x04\x05" {
			t.Errorf("%dx%d: bytes past the image changed: %v", wh[0], wh[1], tail)
		}
	}
}
