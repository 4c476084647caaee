package ops

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"pipeline/pipeline"
)

func solid(w, h int, r, g, b uint8) pipeline.Image {
	im := NewImage(w, h)
	for i := 0; i < len(im.Pix); i += 3 {
		im.Pix[i], im.Pix[i+1], im.Pix[i+2] = r, g, b
	}
	return im
}

func noise(w, h int, seed uint64) pipeline.Image {
	rng := rand.New(rand.NewPCG(seed, 7))
	im := NewImage(w, h)
	for i := range im.Pix {
		im.Pix[i] = uint8(rng.IntN(256))
	}
	return im
}

func clone(im pipeline.Image) pipeline.Image {
	return pipeline.Image{Width: im.Width, Height: im.Height, Pix: append([]uint8(nil), im.Pix...)}
}

// withoutSIMD runs fn with the Go loops instead of the SIMD kernels.
func withoutSIMD(t *testing.T, fn func()) {
	t.Helper()
	old := useSIMD
	setSIMD(false)
	defer setSIMD(old)
	fn()
}

// withoutAVX2 runs fn with the SSE4.1 kernels only.
func withoutAVX2(t *testing.T, fn func()) {
	t.Helper()
	old := useAVX2
	useAVX2 = false
	defer func() { useAVX2 = old }()
	fn()
}

func TestLumaHandValues(t *testing.T) {
	for _, c := range []struct{ r, g, b, want uint8 }{
		{0, 0, 0, 0}, {255, 255, 255, 255},
		{255, 0, 0, 76}, // (19595*255 + 32768) >> 16 = 76.7 -> 76
		{0, 255, 0, 150}, {0, 0, 255, 29},
		{10, 20, 30, 18}, // (195950 + 769400 + 224130 + 32768) >> 16 = 18.6 -> 18
	} {
		if got := Luma(c.r, c.g, c.b); got != c.want {
			t.Errorf("Luma(%d,%d,%d) = %d, want %d", c.r, c.g, c.b, got, c.want)
		}
	}
}

func TestBlendHandValues(t *testing.T) {
	im := pipeline.Image{Width: 2, Height: 1, Pix: []uint8{255, 200, 100, 1, 0, 7}}
	Brightness(im, 0.5) // trunc(0.5*x): 127.5 -> 127, 50.5 -> 50, 3.5 -> 3
	if want := []uint8{127, 100, 50, 0, 0, 3}; string(im.Pix) != string(want) {
		t.Errorf("brightness 0.5: %v, want %v", im.Pix, want)
	}
	im = pipeline.Image{Width: 1, Height: 1, Pix: []uint8{200, 100, 0}}
	Brightness(im, 1.5) // 300 clamps to 255
	if want := []uint8{255, 150, 0}; string(im.Pix) != string(want) {
		t.Errorf("brightness 1.5: %v, want %v", im.Pix, want)
	}
	// Contrast 0 gives the rounded mean luma everywhere; the mean of L = {76, 150} is 113.
	im = pipeline.Image{Width: 2, Height: 1, Pix: []uint8{255, 0, 0, 0, 255, 0}}
	Contrast(im, 0)
	for i, v := range im.Pix {
		if v != 113 {
			t.Fatalf("contrast 0: byte %d = %d, want 113", i, v)
		}
	}
	// Contrast 2 around m = 113: 113 + 2*(255-113) = 397 -> 255, 113 + 2*(0-113) = -113 -> 0.
	im = pipeline.Image{Width: 2, Height: 1, Pix: []uint8{255, 0, 0, 0, 255, 0}}
	Contrast(im, 2)
	if want := []uint8{255, 0, 0, 0, 255, 0}; string(im.Pix) != string(want) {
		t.Errorf("contrast 2: %v, want %v", im.Pix, want)
	}
	// Saturation 0 is grayscale; 0.5 is halfway to L (76 for pure red), truncated.
	im = pipeline.Image{Width: 1, Height: 1, Pix: []uint8{255, 0, 0}}
	Saturation(im, 0.5, nil) // 76 + 0.5*179 = 165.5 -> 165; 76 + 0.5*(-76) = 38
	if want := []uint8{165, 38, 38}; string(im.Pix) != string(want) {
		t.Errorf("saturation 0.5: %v, want %v", im.Pix, want)
	}
}

func TestGrayscaleFlipSolarize(t *testing.T) {
	im := pipeline.Image{Width: 3, Height: 1, Pix: []uint8{255, 0, 0, 0, 255, 0, 10, 20, 30}}
	Grayscale(im)
	if want := []uint8{76, 76, 76, 150, 150, 150, 18, 18, 18}; string(im.Pix) != string(want) {
		t.Errorf("grayscale: %v, want %v", im.Pix, want)
	}
	im = pipeline.Image{Width: 3, Height: 2, Pix: []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}}
	FlipHorizontal(im)
	if want := []uint8{7, 8, 9, 4, 5, 6, 1, 2, 3, 16, 17, 18, 13, 14, 15, 10, 11, 12}; string(im.Pix) != string(want) {
		t.Errorf("flip: %v, want %v", im.Pix, want)
	}
	im = pipeline.Image{Width: 2, Height: 1, Pix: []uint8{0, 127, 128, 200, 255, 64}}
	Solarize(im, 128)
	if want := []uint8{0, 127, 127, 55, 0, 64}; string(im.Pix) != string(want) {
		t.Errorf("solarize: %v, want %v", im.Pix, want)
	}
}

func TestHSVHandValues(t *testing.T) {
	for _, c := range []struct{ r, g, b, h, s, v uint8 }{
		{255, 0, 0, 0, 255, 255},
		{0, 255, 0, 85, 255, 255}, // 1/3 of a turn: float32(1/3)*255 = 85.0000025 -> 85
		{0, 0, 255, 170, 255, 255},
		{100, 100, 100, 0, 0, 100},
		{200, 100, 50, 14, 191, 200}, // h = (bc-gc)/6 = (1-2/3)/6 -> 14.17; s = 150/200*255 = 191.25
	} {
		h, s, v := RGBToHSV(c.r, c.g, c.b)
		if h != c.h || s != c.s || v != c.v {
			t.Errorf("RGBToHSV(%d,%d,%d) = %d,%d,%d, want %d,%d,%d", c.r, c.g, c.b, h, s, v, c.h, c.s, c.v)
		}
	}
	if r, g, b := HSVToRGB(0, 255, 255); r != 255 || g != 0 || b != 0 {
		t.Errorf("HSVToRGB(0,255,255) = %d,%d,%d, want 255,0,0", r, g, b)
	}
	if got := HueShift(-0.1); got != 231 { // trunc(-25.5) = -25 -> 231 mod 256
		t.Errorf("HueShift(-0.1) = %d, want 231", got)
	}
	if got := HueShift(0.1); got != 25 {
		t.Errorf("HueShift(0.1) = %d, want 25", got)
	}
}

// TestHueMatchesReference compares the table-driven Hue kernel with RGBToHSV, the shift and
// HSVToRGB done pixel by pixel, over a lattice of the RGB cube (the whole cube with
// PIPELINE_EXHAUSTIVE=1; it takes about ten seconds).
func TestHueMatchesReference(t *testing.T) {
	step := 3
	if os.Getenv("PIPELINE_EXHAUSTIVE") != "" {
		step = 1
	} else if testing.Short() {
		step = 7
	}
	var pix []uint8
	for r := 0; r < 256; r += step {
		for g := 0; g < 256; g += step {
			for b := 0; b < 256; b++ {
				pix = append(pix, uint8(r), uint8(g), uint8(b))
			}
		}
	}
	for _, h := range []float64{-0.5, -0.1, 0, 0.037, 0.4} {
		im := pipeline.Image{Width: len(pix) / 3, Height: 1, Pix: append([]uint8(nil), pix...)}
		Hue(im, h)
		shift := HueShift(h)
		bad := 0
		for i := 0; i < len(pix); i += 3 {
			hh, s, v := RGBToHSV(pix[i], pix[i+1], pix[i+2])
			r, g, b := HSVToRGB(hh+shift, s, v)
			if im.Pix[i] != r || im.Pix[i+1] != g || im.Pix[i+2] != b {
				if bad++; bad < 5 {
					t.Errorf("hue %v on %v: got %v, want %d,%d,%d", h, pix[i:i+3], im.Pix[i:i+3], r, g, b)
				}
			}
		}
		if bad > 0 {
			t.Errorf("hue %v: %d pixels differ", h, bad)
		}
	}
}

func TestBoxRadiusTable(t *testing.T) {
	// moco-v2-reference.md 1.6.
	for _, c := range []struct{ sigma, r float64 }{
		{0.1, 0.00167}, {0.3, 0.01546}, {0.5, 0.04545}, {1.0, 0.25}, {1.5, 1.03846}, {2.0, 1.375},
	} {
		if got := float64(BoxRadius(float32(c.sigma))); math.Abs(got-c.r) > 1e-5 {
			t.Errorf("BoxRadius(%v) = %v, want %v", c.sigma, got, c.r)
		}
	}
	bw := newBoxWeights(0.25)
	// ww = trunc(float32(2^24) / float32(1.5)): the float32 quotient rounds 11184810.67 up to
	// 11184811 (ulp 1 there); fw = (2^24 - ww) / 2 = 2796202 (integer division).
	if bw.ri != 0 || bw.ww != 11184811 || bw.fw != 2796202 {
		t.Errorf("box weights for r=0.25: %+v", bw)
	}
}

func TestBlurHandValues(t *testing.T) {
	// One horizontal pass of r=0.25 on an impulse of 255: centre (ww*255 + 2^23) >> 24 =
	// 170.5 -> 170, neighbours (fw*255 + 2^23) >> 24 = 42.9999 -> 42. Three passes and the vertical passes then run on
	// top, so check the single pass directly.
	row := []uint8{0, 0, 0, 0, 0, 0, 255, 255, 255, 0, 0, 0, 0, 0, 0}
	line := make([]uint8, len(row)+6)
	boxRow(row, line, 3, newBoxWeights(0.25))
	if want := []uint8{0, 0, 0, 42, 42, 42, 170, 170, 170, 42, 42, 42, 0, 0, 0}; string(row) != string(want) {
		t.Errorf("box pass: %v, want %v", row, want)
	}
	// A flat image stays flat whatever sigma (edges are replicated).
	im := solid(17, 9, 10, 128, 250)
	GaussianBlur(im, 1.9, nil)
	if want := solid(17, 9, 10, 128, 250); string(im.Pix) != string(want.Pix) {
		t.Error("blur changed a flat image")
	}
}

func TestBlurSIMDMatchesGo(t *testing.T) {
	for _, sigma := range []float64{0.1, 0.7, 1.0, 1.5, 2.0, 6.0} {
		for _, wh := range [][2]int{{224, 224}, {13, 5}, {1, 1}, {3, 40}, {29, 31}, {96, 96}} {
			src := noise(wh[0], wh[1], uint64(wh[0]*1000+wh[1]))
			fast := clone(src)
			GaussianBlur(fast, sigma, nil)
			slow := clone(src)
			withoutSIMD(t, func() { GaussianBlur(slow, sigma, nil) })
			sse := clone(src)
			withoutAVX2(t, func() { GaussianBlur(sse, sigma, nil) })
			ref := clone(src)
			gaussianBlurGo(ref, newBoxWeights(BoxRadius(float32(sigma))), new(Scratch))
			if string(fast.Pix) != string(slow.Pix) || string(fast.Pix) != string(ref.Pix) || string(sse.Pix) != string(ref.Pix) {
				t.Errorf("sigma %v on %dx%d: AVX2, SSE, Go filter and running-sum blurs differ", sigma, wh[0], wh[1])
			}
		}
	}
}

func TestResizeHandValues(t *testing.T) {
	// 2x1 -> 1x1: weights 1/2, 1/2 (2^21 each): (2^21 + 2^21*(a+b)) >> 22 = floor((1+a+b)/2).
	src := pipeline.Image{Width: 2, Height: 1, Pix: []uint8{10, 10, 0, 13, 11, 255}}
	dst := NewImage(1, 1)
	if err := Resize(dst, src, nil); err != nil {
		t.Fatal(err)
	}
	if want := []uint8{12, 11, 128}; string(dst.Pix) != string(want) {
		t.Errorf("2x1 -> 1x1: %v, want %v", dst.Pix, want)
	}
	// Upsampling 1 pixel repeats it; a same-size crop is a plain copy.
	src = solid(1, 1, 9, 99, 199)
	dst = NewImage(4, 3)
	if err := Resize(dst, src, nil); err != nil {
		t.Fatal(err)
	}
	if string(dst.Pix) != string(solid(4, 3, 9, 99, 199).Pix) {
		t.Errorf("1x1 -> 4x3: %v", dst.Pix)
	}
	big := noise(50, 40, 1)
	dst = NewImage(20, 10)
	if err := ResizedCrop(dst, big, pipeline.Crop{Top: 7, Left: 11, Height: 10, Width: 20}, nil); err != nil {
		t.Fatal(err)
	}
	for y := range 10 {
		if got, want := dst.Pix[y*60:(y+1)*60], big.Pix[(7+y)*150+33:(7+y)*150+93]; string(got) != string(want) {
			t.Fatalf("same-size crop row %d differs from the source", y)
		}
	}
	if err := ResizedCrop(dst, big, pipeline.Crop{Top: 35, Left: 0, Height: 10, Width: 20}, nil); err == nil {
		t.Error("a crop past the bottom edge was accepted")
	}
}

func TestResizeSIMDMatchesGo(t *testing.T) {
	src := noise(97, 61, 3)
	for _, c := range []struct {
		crop pipeline.Crop
		w, h int
	}{
		{pipeline.Crop{Top: 0, Left: 0, Height: 61, Width: 97}, 224, 224}, // upscale
		{pipeline.Crop{Top: 3, Left: 5, Height: 50, Width: 90}, 20, 13},   // downscale, taps > 4
		{pipeline.Crop{Top: 60, Left: 96, Height: 1, Width: 1}, 5, 5},     // corner pixel
		{pipeline.Crop{Top: 10, Left: 0, Height: 51, Width: 97}, 96, 40},  // bottom-right edge
		{pipeline.Crop{Top: 0, Left: 0, Height: 61, Width: 97}, 3, 2},     // 30+ taps
		{pipeline.Crop{Top: 0, Left: 0, Height: 61, Width: 97}, 70, 50},   // 3 or 4 taps
		{pipeline.Crop{Top: 0, Left: 0, Height: 61, Width: 97}, 55, 41},   // 4 or 5 taps
		{pipeline.Crop{Top: 0, Left: 0, Height: 61, Width: 97}, 43, 33},   // 5 or 6 taps
		{pipeline.Crop{Top: 0, Left: 0, Height: 61, Width: 97}, 38, 27},   // 6 and 5 taps
		{pipeline.Crop{Top: 0, Left: 0, Height: 61, Width: 97}, 28, 24},   // 7 and 6 taps
		{pipeline.Crop{Top: 0, Left: 0, Height: 61, Width: 97}, 26, 21},   // 8 and 6 taps
	} {
		fast := NewImage(c.w, c.h)
		if err := ResizedCrop(fast, src, c.crop, nil); err != nil {
			t.Fatal(err)
		}
		slow := NewImage(c.w, c.h)
		withoutSIMD(t, func() {
			if err := ResizedCrop(slow, src, c.crop, nil); err != nil {
				t.Fatal(err)
			}
		})
		sse := NewImage(c.w, c.h)
		withoutAVX2(t, func() {
			if err := ResizedCrop(sse, src, c.crop, nil); err != nil {
				t.Fatal(err)
			}
		})
		if string(fast.Pix) != string(slow.Pix) || string(sse.Pix) != string(slow.Pix) {
			t.Errorf("crop %+v -> %dx%d: SIMD and Go differ", c.crop, c.w, c.h)
		}
	}
}

func TestBlendSIMDMatchesGo(t *testing.T) {
	for _, src := range []pipeline.Image{noise(31, 7, 5), noise(224, 224, 6), noise(5, 1, 7)} {
		blendSIMDMatchesGo(t, src)
	}
	big := noise(224, 224, 8)
	if got, want := MeanLuma(big), meanLumaGo(big); got != want {
		t.Errorf("MeanLuma %d, Go loop %d", got, want)
	}
}

// TestBlendLargeFactors: factors far outside [0, 2] (a jitter strength of 200, say, which the
// spec accepts) must saturate as Pillow's blend does (255 above, 0 below) on every kernel path.
func TestBlendLargeFactors(t *testing.T) {
	src := noise(37, 3, 11)
	for _, f := range []float64{127, 128.5, 200, 1e4, 1e7, 1e10, -127, -200, -1e7} {
		want := clone(src)
		pix := want.Pix
		for i, x := range pix {
			pix[i] = blendByte(0, int(x), float32(f))
		}
		for name, run := range map[string]func(func()){
			"default": func(fn func()) { fn() },
			"sse":     func(fn func()) { withoutAVX2(t, fn) },
			"go":      func(fn func()) { withoutSIMD(t, fn) },
		} {
			got := clone(src)
			run(func() { Brightness(got, f) })
			if string(got.Pix) != string(want.Pix) {
				t.Errorf("brightness %v (%s): %v, want %v", f, name, got.Pix[:9], want.Pix[:9])
			}
			c, s, g := clone(src), clone(src), clone(src)
			run(func() { Contrast(c, f); Saturation(s, f, nil) })
			withoutSIMD(t, func() { Contrast(g, f) })
			if string(c.Pix) != string(g.Pix) {
				t.Errorf("contrast %v (%s) differs from the Go loop", f, name)
			}
			g = clone(src)
			withoutSIMD(t, func() { Saturation(g, f, nil) })
			if string(s.Pix) != string(g.Pix) {
				t.Errorf("saturation %v (%s) differs from the Go loop", f, name)
			}
		}
	}
}

func meanLumaGo(im pipeline.Image) int {
	var sum uint64
	for i := 0; i < len(im.Pix); i += 3 {
		sum += uint64(Luma(im.Pix[i], im.Pix[i+1], im.Pix[i+2]))
	}
	return int(float64(sum)/float64(im.Width*im.Height) + 0.5)
}

func blendSIMDMatchesGo(t *testing.T, src pipeline.Image) {
	for _, f := range []float64{0, 0.3, 0.6, 1, 1.37, 2} {
		for name, op := range map[string]func(pipeline.Image){
			"brightness": func(im pipeline.Image) { Brightness(im, f) },
			"contrast":   func(im pipeline.Image) { Contrast(im, f) },
			"saturation": func(im pipeline.Image) { Saturation(im, f, nil) },
			"grayscale":  Grayscale,
		} {
			fast, sse, slow := clone(src), clone(src), clone(src)
			op(fast)
			withoutAVX2(t, func() { op(sse) })
			withoutSIMD(t, func() { op(slow) })
			if string(fast.Pix) != string(slow.Pix) || string(sse.Pix) != string(slow.Pix) {
				t.Errorf("%s %v on %dx%d: AVX2, SSE and Go differ", name, f, src.Width, src.Height)
			}
		}
	}
}

func TestBlendExhaustiveAgainstFormula(t *testing.T) {
	// Every (degenerate, image) byte pair for a few factors, through the kernel used on images.
	for _, f := range []float32{0.6, 0.9999, 1.2345, 1.4, 1.8} {
		pix := make([]uint8, 0, 256*256)
		deg := make([]uint8, 0, 256*256)
		for d := range 256 {
			for x := range 256 {
				deg = append(deg, uint8(d))
				pix = append(pix, uint8(x))
			}
		}
		blendBytes(pix, deg, 0, f)
		for i, got := range pix {
			d, x := i/256, i%256
			want := float64(float32(d) + float32(f*float32(x-d)))
			w := uint8(math.Min(255, math.Max(0, math.Trunc(want))))
			if got != w {
				t.Fatalf("blend(d=%d, x=%d, f=%v) = %d, want %d", d, x, f, got, w)
			}
		}
	}
}

func TestResizedCropFlipIsResizeThenFlip(t *testing.T) {
	src := noise(97, 61, 9)
	for _, c := range []struct {
		crop pipeline.Crop
		w, h int
	}{
		{pipeline.Crop{Top: 3, Left: 5, Height: 50, Width: 90}, 24, 13},  // both axes
		{pipeline.Crop{Top: 0, Left: 0, Height: 61, Width: 97}, 224, 61}, // width only
		{pipeline.Crop{Top: 2, Left: 4, Height: 30, Width: 40}, 40, 50},  // height only
		{pipeline.Crop{Top: 2, Left: 4, Height: 30, Width: 40}, 40, 30},  // copy
		{pipeline.Crop{Top: 10, Left: 0, Height: 51, Width: 97}, 96, 40}, // bottom-right edge
	} {
		want := NewImage(c.w, c.h)
		if err := ResizedCrop(want, src, c.crop, nil); err != nil {
			t.Fatal(err)
		}
		FlipHorizontal(want)
		for _, simd := range []bool{true, false} {
			got := NewImage(c.w, c.h)
			run := func() {
				if err := ResizedCropFlip(got, src, c.crop, true, nil); err != nil {
					t.Fatal(err)
				}
			}
			if simd {
				run()
			} else {
				withoutSIMD(t, run)
			}
			if string(got.Pix) != string(want.Pix) {
				t.Errorf("crop %+v -> %dx%d (simd %v): fused flip differs", c.crop, c.w, c.h, simd)
			}
		}
	}
}

func TestSolarizeAllBytes(t *testing.T) {
	for _, th := range []uint8{128, 100} {
		im := pipeline.Image{Width: 86, Height: 1, Pix: make([]uint8, 258)}
		for i := range im.Pix {
			im.Pix[i] = uint8(i)
		}
		Solarize(im, th)
		for i, got := range im.Pix {
			want := uint8(i)
			if want >= th {
				want = 255 - want
			}
			if got != want {
				t.Fatalf("threshold %d: solarize(%d) = %d, want %d", th, uint8(i), got, want)
			}
		}
	}
}
